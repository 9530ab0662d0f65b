#!/usr/bin/env bash
# Rebuild the shipped Skiing models from nothing, on a CPU: collect episodes, train and export
# the tokenizer, then train and export the dynamics model on its tokens, and evaluate both.
#   tools/rebuild_skiing.sh [WORKDIR]        (needs `pip install -e '.[train]'`)
# The data and the runs go to WORKDIR (default: a new temporary folder); the graphs, their
# metadata and the start states to checkpoints/, the evaluations to checkpoints/skiing_*eval.json.
# DYN_STEPS sets the length of the dynamics model's first stage (4 frames of context).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
dyn_steps=${DYN_STEPS:-5000}
start=$(date +%s)
# The shipped models were trained on episodes whose agents steer by holding the key toward
# the target (`--steering direct`); `heading`, the default now, skis the slope (docs/skiing.md).
neuralplay collect skiing --out "$work/data" --episodes 8 --seed 0 --steering direct
# The tokenizer: a product quantiser of 2 codebooks of 64 codes, trained as it was for the
# shipped one, in stages of one run: 8,000 steps at lr 1e-3, resumed to 14,000 at a lower peak,
# then with the skier's pixels weighted 60 instead of 20 to 17,000 and to 20,000 steps.
tok=(--data "$work/data" --run "$work/tokenizer" --threads 2)
neuralplay train skiing-tokenizer "${tok[@]}" --codebook-groups 2 --codebook-size 64 --steps 8000
neuralplay train skiing-tokenizer "${tok[@]}" --resume --steps 14000 --lr 3e-4
neuralplay train skiing-tokenizer "${tok[@]}" --resume --steps 17000 --lr 1e-3 --skier-weight 60
neuralplay train skiing-tokenizer "${tok[@]}" --resume --steps 20000 --lr 1e-3 --skier-weight 60
neuralplay export skiing-tokenizer --run "$work/tokenizer" --data "$work/data" --out checkpoints/
neuralplay eval skiing-tokenizer --data "$work/data" --json > checkpoints/skiing_tokenizer_eval.json
# The dynamics model: 4 frames of context first, then a new run warm-started from it that
# sees 8 (the weights do not depend on the context: time is rotary), then one more from that
# with the tokens that change from the frame before weighted 4 in the loss. Exported to take
# 1 MaskGIT pass a frame, which measured better than 2 or 3 (docs/skiing.md).
neuralplay train skiing-dynamics --data "$work/data" --run "$work/dynamics-4" --steps "$dyn_steps" --threads 2
neuralplay train skiing-dynamics --data "$work/data" --run "$work/dynamics-8" --init-from "$work/dynamics-4" \
  --context 8 --steps 4500 --lr 3e-4 --threads 2
neuralplay train skiing-dynamics --data "$work/data" --run "$work/dynamics" --init-from "$work/dynamics-8" \
  --context 8 --change-weight 4 --steps 3000 --lr 3e-4 --seed 1 --threads 2
neuralplay export skiing-dynamics --run "$work/dynamics" --data "$work/data" --out checkpoints/ --maskgit-steps 1
neuralplay eval skiing --data "$work/data" --json > checkpoints/skiing_eval.json
echo "rebuilt the Skiing checkpoints in $(( ($(date +%s) - start) / 60 )) minutes (work folder $work)"
