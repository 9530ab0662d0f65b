#!/usr/bin/env bash
# Rebuild the shipped Skiing models from nothing, on a CPU: collect episodes, train and export
# the tokenizer, then train and export the dynamics model on its tokens, and evaluate both.
#   tools/rebuild_skiing.sh [WORKDIR]        (needs `pip install -e '.[train]'`)
# The data and the runs go to WORKDIR (default: a new temporary folder); the graphs, their
# metadata and the start states to checkpoints/, the evaluations to checkpoints/skiing_*eval.json.
# TOK_STEPS and DYN_STEPS set the training lengths.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
tok_steps=${TOK_STEPS:-2600}
dyn_steps=${DYN_STEPS:-8000}
start=$(date +%s)
neuralplay collect skiing --out "$work/data" --episodes 8 --seed 0
neuralplay train skiing-tokenizer --data "$work/data" --run "$work/tokenizer" --steps "$tok_steps" --threads 2
neuralplay export skiing-tokenizer --run "$work/tokenizer" --data "$work/data" --out checkpoints/
neuralplay eval skiing-tokenizer --data "$work/data" --json > checkpoints/skiing_tokenizer_eval.json
neuralplay train skiing-dynamics --data "$work/data" --run "$work/dynamics" --steps "$dyn_steps" --threads 2
neuralplay export skiing-dynamics --run "$work/dynamics" --data "$work/data" --out checkpoints/
neuralplay eval skiing --data "$work/data" --json > checkpoints/skiing_eval.json
echo "rebuilt the Skiing checkpoints in $(( ($(date +%s) - start) / 60 )) minutes (work folder $work)"
