#!/usr/bin/env bash
# Rebuild the shipped Tetris checkpoint from nothing, on a CPU: collect, train, export, eval.
#   tools/rebuild_tetris.sh [WORKDIR]        (needs `pip install -e '.[train]'`)
# The data and the run go to WORKDIR (default: a new temporary folder); the checkpoint to
# checkpoints/tetris.{onnx,json}, its full evaluation to checkpoints/tetris_eval.json.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
steps=${STEPS:-37000}
start=$(date +%s)
neuralplay collect tetris --out "$work/data" --seed 0
# The last stages' data: the same sets, plus 20% more training hard drops of new pieces on the stacks.
neuralplay collect tetris --out "$work/data-hard-drops" --seed 0 --hard-drop-fraction 0.2
# The sixth stage's: as many extra hard drops as the train set has steps.
neuralplay collect tetris --out "$work/data-more-hard-drops" --seed 0 --hard-drop-fraction 1.0
neuralplay train tetris --data "$work/data" --run "$work/run" --steps "$steps" --eval-every 3000 --threads 2
# Second stage: a column stream added to the rows-only model (it starts as that model) and
# hard drops given 30% of every batch, for 9,000 steps.
neuralplay train tetris --data "$work/data" --run "$work/run-columns" --init-from "$work/run" --columns 2 \
    --fresh-lr-scale 10 --focus-event hard_drop --focus-share 0.3 --lr 5e-5 --steps 9000 --eval-every 3000 --threads 2
# Third stage: the generator sees only which piece the noise picks (steps without a spawn then
# cannot depend on the noise), 8,000 steps.
neuralplay train tetris --data "$work/data" --run "$work/run-piece" --init-from "$work/run-columns" \
    --piece-from-noise --focus-event hard_drop --focus-share 0.2 --lr 1e-4 --steps 8000 --eval-every 4000 --threads 2
# Fourth stage: on the data with the extra hard drops, hard drops 30% of every batch, 6,000 steps;
# then a fifth, the same at half the learning rate for 12,000 steps.
neuralplay train tetris --data "$work/data-hard-drops" --run "$work/run-hard-drops" --init-from "$work/run-piece" \
    --focus-event hard_drop --focus-share 0.3 --lr 1e-4 --steps 6000 --eval-every 2000 --threads 2
neuralplay train tetris --data "$work/data-hard-drops" --run "$work/run-hard-drops-2" --init-from "$work/run-hard-drops" \
    --focus-event hard_drop --focus-share 0.3 --lr 5e-5 --steps 12000 --eval-every 4000 --threads 2
# Sixth stage: on the data with five times the extra hard drops, hard drops half of every batch, 12,000 steps.
neuralplay train tetris --data "$work/data-more-hard-drops" --run "$work/run-hard-drops-3" --init-from "$work/run-hard-drops-2" \
    --focus-event hard_drop --focus-share 0.5 --lr 5e-5 --steps 12000 --eval-every 4000 --threads 2
# Seventh: the same at --lr 3e-5 for 6,000 steps, exporting a moving average of the generator's weights.
neuralplay train tetris --data "$work/data-more-hard-drops" --run "$work/run-average" --init-from "$work/run-hard-drops-3" \
    --focus-event hard_drop --focus-share 0.5 --lr 3e-5 --ema-decay 0.999 --steps 6000 --eval-every 6000 --threads 2
neuralplay export tetris --run "$work/run-average" --data "$work/data" --out checkpoints/tetris.onnx
neuralplay eval tetris --data "$work/data" --json > checkpoints/tetris_eval.json
echo "rebuilt checkpoints/tetris.onnx in $(( ($(date +%s) - start) / 60 )) minutes (work folder $work)"
