"""How well the skier's next sideways step can be told from the frames before it.

ALE's skier moves sideways by whole pixels, on some steps and not others: how far and when
follows from its pose and a speed the screen does not show. At 105x80 it moves on about one
step in ten. For every step of the episodes in DATA/heldout, the skier's next step (the
change of its leftmost column) is predicted by a lookup table built on DATA/train: its key
is the skier's pose (the shape of its pixels) in the last two frames, its last k steps and
the action; its answer the step seen most often under that key. For each k, prints the share
of held-out steps whose key the table holds and, of those, the share it gets right and the
share right of the steps where the skier moves (standing still gets none of those). The table with
k >= 1 past steps reads the last k + 1 frames; a model whose context holds them (k + 2
frames, the predicted one included) sees at least what the table sees.

    python tools/skier_steps.py --data DATA [--history 0 2 4 6 8 16]
"""
from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from neuralplay.errors import UserError
from neuralplay.games.skiing import SKIER
from neuralplay.training.skiing_data import episode_paths, load_episode


def skier_track(frames: np.ndarray) -> list[tuple[int, tuple] | None]:
    """Each frame's skier as (leftmost column, pose: its pixels' offsets from its top-left
    corner), None where the frame shows no skier."""
    track = []
    for frame in frames:
        rows, cols = np.nonzero(frame == SKIER)
        if not len(cols):
            track.append(None)
            continue
        top, left = int(rows.min()), int(cols.min())
        track.append((left, tuple(zip((rows - top).tolist(), (cols - left).tolist()))))
    return track


def step_examples(track: list, actions: np.ndarray, history: int) -> list[tuple[tuple, int]]:
    """(key, next step) for every step t of an episode's `skier_track` whose frames from
    t - max(history, 1) to t + 1 all show the skier: key = (poses at t - 1 and t, the
    `history` steps into frame t, action at t)."""
    examples = []
    for t in range(max(history, 1), len(track) - 1):
        seen = track[t - max(history, 1):t + 2]
        if any(s is None for s in seen):
            continue
        columns = [s[0] for s in seen]
        steps = tuple(np.diff(columns[:-1]).tolist()) if history else ()
        key = (track[t - 1][1], track[t][1], steps, int(actions[t]))
        examples.append((key, columns[-1] - columns[-2]))
    return examples


def lookup_scores(train: list[tuple[tuple, int]], heldout: list[tuple[tuple, int]]) -> dict:
    """The most common answer of each key in `train`, scored on `heldout`."""
    table: dict[tuple, Counter] = defaultdict(Counter)
    for key, step in train:
        table[key][step] += 1
    known = [(table[key].most_common(1)[0][0], step) for key, step in heldout if key in table]
    moving = [(guess, step) for guess, step in known if step != 0]
    return {"heldout_steps": len(heldout),
            "known_share": len(known) / len(heldout) if heldout else None,
            "right": float(np.mean([g == s for g, s in known])) if known else None,
            "moving_steps": len(moving),
            "moving_right": float(np.mean([g == s for g, s in moving])) if moving else None}


def tracked_episodes(folder: Path) -> list[tuple[list, np.ndarray]]:
    """Each episode's skier track and actions."""
    return [(skier_track(episode["frames"]), episode["actions"])
            for episode in (load_episode(path) for path in episode_paths(folder))]


def examples_of(episodes: list[tuple[list, np.ndarray]], history: int) -> list[tuple[tuple, int]]:
    return [example for track, actions in episodes for example in step_examples(track, actions, history)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a `collect skiing` folder (train/ and heldout/)")
    parser.add_argument("--history", type=int, nargs="+", default=[0, 2, 4, 6, 8, 16], metavar="K",
                        help="past steps the table's key holds (default: 0 2 4 6 8 16)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    try:
        if min(args.history) < 0:
            raise UserError(f"--history {min(args.history)}: a number of past steps, 0 or more")
        train, heldout = (tracked_episodes(Path(args.data) / split) for split in ("train", "heldout"))
    except UserError as err:
        raise SystemExit(f"error: {err}") from None
    results = {k: lookup_scores(examples_of(train, k), examples_of(heldout, k)) for k in args.history}
    if args.json:
        print(json.dumps(results, indent=2))
        return

    def pct(v):
        return "n/a" if v is None else f"{100 * v:.1f}%"

    print("past steps | held-out steps | key in the table | of those, right | of those, steps that move | of them right")
    for k, r in results.items():
        print(f"{k:10d} | {r['heldout_steps']:14d} | {pct(r['known_share']):>16} | {pct(r['right']):>15} | "
              f"{r['moving_steps']:25d} | {pct(r['moving_right'])}")


if __name__ == "__main__":
    main()
