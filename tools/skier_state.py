"""The skier's state read off the context frames alone and carried by the keys: how far a
key-driven skier state keeps the column on the rollouts of `neuralplay eval skiing`.

`tools/skier_ram.py` found the skier to be five RAM bytes (speed 14, heading 15, 19 and 20,
the turn timer 98) and a sub-pixel column, stepped by small tables. Here the tables are fit
on the data's training episodes (replayed in ALE a console frame at a time from the seed in
each file name), and for each start of the eval's rollout plan (same seed, same starts) the
skier's state is read off the real context frames, nothing else:
- candidates: every five-byte state the training replays show, at every sub-pixel column
  that the first context frame's sprite allows, a pixel either side;
- each context frame keeps the candidates it agrees with: its skier sprite (at 105x80) shows
  some headings and a column offset in the training replays (a frame shows the RAM of the
  console frame before its last), and the slope's scroll over the context (`slope_scroll`:
  each frame aligned with one a few rows of scroll before it, as `tools/skiing_scroll.py`
  aligns two frames) must match the candidates' downhill motion (a table of speed and
  RAM[20]) within 1.5 rows;
- the survivors are stepped by the tables under the episode's keys for the horizon; the
  column is their median (of a seeded sample of 2,000 where more are left). Scored: the
  share of steps where it is within 6 px (the eval's 3 px at 105x80) of ALE's skier
  (RAM[25]); and how many starts every context frame read kept candidates for.
Beside it, the same rollout from ALE's true state at the start, the start column held, and
the two rollouts again with each crash told: when ALE's skier falls (its heading byte
leaves 0-15), the candidates take ALE's speed, heading and timer at that frame. A crash
depends on the slope, which the tables do not see and a world model draws.

    python tools/skier_state.py --data DATA [--fit DIR ...] [--frames 15] [--rollouts 24]
        [--horizon 300] [--seed 0] [--no-scroll] [--json]

`--fit DIR` (repeatable) fits the tables on those folders' training episodes instead of
DATA's, as `neuralplay train skier-state --data DIR ...` does.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))  # the sibling tool whose column tolerance this scores with
import skier_ram  # noqa: E402

from neuralplay.errors import UserError  # noqa: E402
from neuralplay.runtime.skier_state import (FALLEN_FROM, FRAMES_PER_STEP, MAX_CANDIDATES,  # noqa: E402
                                            STATE_BYTES, STATE_FRAMES, SkierState, SkierTables)
from neuralplay.training.skier_tables import fit_tables, replay, training_episodes  # noqa: E402
from neuralplay.training.skiing_dynamics_eval import heldout_paths, interleave_policies, plan_rollouts  # noqa: E402

F4 = FRAMES_PER_STEP
SPEED, HEADING, B19, B20, TIMER = STATE_BYTES
COLUMN = skier_ram.X


def read_state(tables: SkierTables, episode: dict, start: int, frames: int, scroll: bool = True,
               seed: int = 0) -> tuple[np.ndarray | None, bool]:
    """Candidate states at console frame 4*start - 1 agreeing with the `frames` context frames
    up to `start` (`SkierState.read`, the runtime's reading), and whether every frame read
    kept some; None where the first of them shows no skier. The reset screen (frame 0) is
    not read: it shows no console frame before it."""
    first = max(1, start - frames + 1)
    state = SkierState(tables, seed)
    every_read = state.read(episode["frames"][first - 1:start + 1], episode["actions"][first - 1:start], scroll)
    return (state.candidates if len(state.candidates) else None), every_read


def true_state(rams: np.ndarray, start: int) -> np.ndarray:
    """ALE's own state at console frame 4*start - 1, as the one candidate."""
    shown = rams[F4 * start - 1]
    return np.array([[*shown[list(STATE_BYTES)], skier_ram.position(shown), 0]])


def roll(tables: SkierTables, c: np.ndarray | None, rams: np.ndarray, keys: np.ndarray, start: int, horizon: int,
         crash_told: bool, rng: np.random.Generator) -> dict:
    """The candidates stepped for `horizon` steps; the share of steps whose median column is
    within 6 px of ALE's skier, and the falls ALE's skier took."""
    if c is None:
        return {"tracked": 0.0, "candidates": 0, "falls": 0}
    candidates, hits, falls = len(c), [], 0
    for f in range(F4 * start - 1, F4 * (start + horizon) - 1):
        if len(c) > MAX_CANDIDATES:
            c = c[rng.choice(len(c), MAX_CANDIDATES, replace=False)]
        c = tables.step(c, int(keys[f]))
        if rams[f + 1, HEADING] >= FALLEN_FROM > rams[f, HEADING]:
            falls += 1
            if crash_told:
                c[:, 0], c[:, 1], c[:, 4] = rams[f + 1, SPEED], rams[f + 1, HEADING], rams[f + 1, TIMER]
        if (f + 2) % F4 == 0:  # console frame f + 1 is 4t - 1: the state frame t shows
            hits.append(abs(np.median(c[:, 5]) / 32 - rams[f + 1, COLUMN]) <= skier_ram.COLUMN_TOLERANCE_PX)
    return {"tracked": float(np.mean(hits)), "candidates": candidates, "falls": falls}


def measure(data: Path, frames: int, rollouts: int, horizon: int, seed: int, scroll: bool = True,
            fit_on: list[Path] | None = None) -> dict:
    if min(frames, rollouts, horizon) < 1 or seed < 0:
        raise UserError("--frames, --rollouts and --horizon take a whole number of at least 1, "
                        "--seed one of at least 0")
    fit_on = fit_on or [data]
    train_paths = training_episodes(fit_on)
    paths = heldout_paths(data / "heldout")
    tables = fit_tables([replay(p) for p in train_paths])
    held = [replay(p) for p in paths]
    plan, horizon = plan_rollouts([len(e["actions"]) for _, _, e in held], interleave_policies(paths),
                                  rollouts, horizon, frames, np.random.default_rng(seed))
    per_start = []
    for e, s in plan:
        rams, keys, episode = held[e]
        read, all_agreed = read_state(tables, episode, s, frames, scroll, seed)
        row = {"start": f"{paths[e].name}@{s}", "every_frame_read": all_agreed}
        for name, c in (("from_frames", read), ("from_true_state", true_state(rams, s))):
            for told in (False, True):
                got = roll(tables, c, rams, keys, s, horizon, told, np.random.default_rng(seed))
                row[name + ("_crash_told" if told else "")] = got["tracked"]
        row["candidates"] = 0 if read is None else len(read)
        row["falls"] = got["falls"]  # ALE's, the same in every rollout of the start
        row["held_still"] = float(np.mean([abs(rams[F4 * s - 1, COLUMN] - rams[F4 * (s + k) - 1, COLUMN])
                                           <= skier_ram.COLUMN_TOLERANCE_PX for k in range(1, horizon + 1)]))
        per_start.append(row)
    figures = ["from_frames", "from_frames_crash_told", "from_true_state", "from_true_state_crash_told",
               "held_still"]
    return {"data": str(data), "fit_on": [str(f) for f in fit_on], "frames": frames, "scroll_read": scroll, "horizon": horizon, "starts": len(per_start),
            "starts_read_by_every_frame": sum(r["every_frame_read"] for r in per_start),
            "training_states": len(tables.states), "falls": sum(r["falls"] for r in per_start),
            **{f: float(np.mean([r[f] for r in per_start])) for f in figures}, "per_start": per_start}


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="collected Skiing data: train/ fits the tables, heldout/ is measured")
    ap.add_argument("--fit", action="append", type=Path, metavar="DIR",
                    help="fit the tables on this data folder's training episodes (repeatable; default: --data)")
    ap.add_argument("--frames", type=int, default=STATE_FRAMES - 1,
                    help=f"context frames read (default {STATE_FRAMES - 1}: the runtime's)")
    ap.add_argument("--rollouts", type=int, default=24, help="starts, planned as `eval skiing` plans them (default 24)")
    ap.add_argument("--horizon", type=int, default=300, help="steps a rollout (default 300)")
    ap.add_argument("--seed", type=int, default=0, help="the eval's seed: the same starts (default 0)")
    ap.add_argument("--no-scroll", action="store_true", help="read only the sprites, not the slope's scroll")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    try:
        out = measure(Path(args.data), args.frames, args.rollouts, args.horizon, args.seed, not args.no_scroll,
                      args.fit)
    except UserError as e:
        print(f"skier_state: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{out['starts']} starts, {out['frames']} context frames"
          f"{'' if out['scroll_read'] else ' (sprites only)'}, horizon {out['horizon']}, ALE's skier fell "
          f"{out['falls']} times: column within {skier_ram.COLUMN_TOLERANCE_PX} px of ALE's in")
    print(f"  read off the frames {out['from_frames']:.1%} (crashes told {out['from_frames_crash_told']:.1%}); "
          f"from ALE's true state {out['from_true_state']:.1%} ({out['from_true_state_crash_told']:.1%}); "
          f"start column held {out['held_still']:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
