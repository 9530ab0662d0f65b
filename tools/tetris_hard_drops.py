"""Where does a Tetris checkpoint get hard drops wrong? A diagnostic for the one lagging event.

    python tools/tetris_hard_drops.py --data DATA [--checkpoint C] [--draws 5] [--train-examples 8000]

DATA is a `neuralplay collect tetris` folder. For the non-spawn hard drops of the real-play
test set, the checkpoint (default: the shipped one) predicts the next board under `--draws`
different noise draws, as play does. Printed as one JSON object: the board accuracy per
draw; how many boards are wrong under every draw and how many under some only (those
depend on the noise, which a step without a spawn should not); the accuracy on drops that
clear lines and on the rest; and the accuracy on the first `--train-examples` hard drops of
the training set (no better than on the test set: the model underfits; better: more data
may help).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from neuralplay.games.tetris import EVENT_NAMES
from neuralplay.runtime.checkpoint import load_checkpoint, onnx_session
from neuralplay.runtime.tetris import DEFAULT_CHECKPOINT, GAME, MODEL_KIND
from neuralplay.training import tetris_data
from neuralplay.training.tetris_eval import onnx_predictor
from neuralplay.training.tetris_metrics import predict_all
from neuralplay.training.tetris_train import transition_kind

HARD_DROP = EVENT_NAMES.index("hard_drop")


def hard_drops(data: tetris_data.Transitions, limit: int | None = None) -> tetris_data.Transitions:
    index = np.flatnonzero((data.event == HARD_DROP) & ~tetris_data.is_spawn(data.x, data.y))
    return data.subset(index[:limit])


def correct(session, data: tetris_data.Transitions, seed: int) -> np.ndarray:
    p = predict_all(onnx_predictor(session, seed), data.x, data.event)
    return (p == data.y).reshape(len(p), -1).all(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--train-examples", type=int, default=8000)
    args = parser.parse_args()
    ckpt = load_checkpoint(args.checkpoint, GAME, MODEL_KIND, DEFAULT_CHECKPOINT)
    session = onnx_session(ckpt.onnx_path, threads=2)
    test = hard_drops(tetris_data.load(args.data / "test_play.npz"))
    right = np.stack([correct(session, test, seed) for seed in range(args.draws)])
    clears = transition_kind(test.x, test.y, test.spawn) == 2  # a hard drop always locks
    train = hard_drops(tetris_data.load(args.data / "train.npz"), args.train_examples)
    print(json.dumps({
        "checkpoint": ckpt.identity,
        "test_hard_drops": len(test),
        "accuracy_per_draw": [round(float(r.mean()), 4) for r in right],
        "wrong_under_every_draw": int((~right).all(axis=0).sum()),
        "wrong_under_some_draws_only": int(((~right).any(axis=0) & right.any(axis=0)).sum()),
        "with_line_clear": {"count": int(clears.sum()), "accuracy": round(float(right[:, clears].mean()), 4)},
        "without_line_clear": {"count": int((~clears).sum()), "accuracy": round(float(right[:, ~clears].mean()), 4)},
        "train_hard_drops": len(train),
        "train_accuracy": round(float(correct(session, train, 0).mean()), 4),
    }, indent=2))


if __name__ == "__main__":
    main()
