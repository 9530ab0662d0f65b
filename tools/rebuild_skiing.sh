#!/usr/bin/env bash
# Rebuild the shipped Skiing models on a CPU (about 40 minutes): collect the episodes, train
# the --skier-motion dynamics model from the committed candidate pair, fit the skier-state
# tables beside it, export, evaluate and bench.
#   tools/rebuild_skiing.sh [WORKDIR]        (needs `pip install -e '.[train]'`)
# The data and the run go to WORKDIR (default: a new temporary folder); the graphs, their
# metadata, the start states and the tables to checkpoints/, the measurements to
# checkpoints/skiing_{tokenizer_eval,eval,bench}.json.
#
# The tokenizer is the candidate's (checkpoints/candidates/skiing_local, a local-encoder
# product quantiser of 2 codebooks of 256 codes), shipped as it is; the dynamics model starts
# from the candidate's. How those two were trained, stage by stage from the models shipped
# before them, is in docs/skiing.md ("The local tokenizer trained to its bars").
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
candidate=checkpoints/candidates/skiing_local
start=$(date +%s)
# The agents steer by holding the key toward the target (`--steering direct`), as for every
# Skiing model so far; `heading`, the default now, skis the slope (docs/skiing.md).
neuralplay collect skiing --out "$work/data" --episodes 8 --seed 0 --steering direct
# The skier-state tables are fit on the skiing players' episodes too: the direct ones stand
# sideways most of the time and show the tables too few of a moving skier's states.
neuralplay collect skiing --out "$work/heading" --episodes 8 --seed 0
for part in encoder decoder; do
  cp "$candidate/skiing_tokenizer_$part.json" "$candidate/skiing_tokenizer_$part.onnx" checkpoints/
done
neuralplay eval skiing-tokenizer --data "$work/data" --json > checkpoints/skiing_tokenizer_eval.json
# Conditioned on the skier's column (--skier-motion), 4 frames of context, half the clips'
# pasts with the skier moved aside so that it learns to draw the skier where the column says.
neuralplay train skiing-dynamics --data "$work/data" --tokenizer "$candidate" --run "$work/dynamics" \
  --init-from "$candidate" --context 4 --lr 2e-4 --skier-motion --shifted-context 0.5 --fresh-lr-scale 10 \
  --steps 1500 --threads 2
# The tables first, so that the export's metrics are measured with the column they carry.
neuralplay train skier-state --data "$work/data" --data "$work/heading" --out checkpoints/
neuralplay export skiing-dynamics --run "$work/dynamics" --data "$work/data" --tokenizer checkpoints/ \
  --out checkpoints/ --maskgit-steps 1
neuralplay eval skiing --data "$work/data" --json --rollouts 24 --report docs/report/skiing > checkpoints/skiing_eval.json
neuralplay bench skiing --json > checkpoints/skiing_bench.json
echo "rebuilt the Skiing checkpoints in $(( ($(date +%s) - start) / 60 )) minutes (work folder $work)"
