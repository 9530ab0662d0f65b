"""Which of ALE's RAM bytes the skier's sideways motion runs on, and how far lookup tables
of them, fit on a few episodes, carry the skier's column open loop.

A key-driven skier state in the world model would have to carry what ALE carries. This
tool plays Skiing one console frame at a time (each key held for 4 frames, as a step of
`ALE/Skiing-v5` does), with the held-random player of the data, and reads the RAM every
frame. The skier's column is RAM[25], with a signed sub-pixel byte in RAM[99] (1/32 px);
the skier's own state is taken to be `STATE`: speed (14), heading (15, 16 values), two
bytes that step by one a frame as it turns and gathers speed (19, 20) and the turn timer
(98).

Two models, each a table per target (a state byte's change, or the sub-pixel move) of
its most common value for each value of its sources, fit on the first `--fit` episodes:
`joint` looks every byte up by the whole state and the key, `factored` by the two or three
sources in `FACTORED` (speed, 19 and 20 by the heading the frame turns to, which its own
table gives first). Printed for each, on the other episodes:
- one frame on from the true state: for each target, the share of frames whose sources
  the table saw, and there the share whose change it gives right;
- rolled out from the true RAM state at random starts for `--horizon` steps under the
  episode's keys: the share of steps whose column is within 6 px (the eval's 3 px at
  105x80) of ALE's, against the start column held still, and the share of lookups the
  tables never saw (a table with speed among its sources takes the nearest speed seen
  with the same other sources; else no change); the column stays between the walls (the
  columns the fit episodes' skier kept within); and the same share with the state taken
  from ALE every frame, so that only the move is the tables'.

    python tools/skier_ram.py [--episodes 6] [--fit 4] [--steps 1500] [--rollouts 12]
        [--horizon 300] [--seed 0] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

import numpy as np

from neuralplay.errors import UserError
from neuralplay.games.skiing import HeldRandomPlayer, make_env
from neuralplay.runtime.skier_state import FRAMES_PER_STEP, STATE_BYTES
from neuralplay.training.skier_tables import (FACTORED, KEY, MOVE, SPEED, SUBPIXEL, TURNED, X, Table,  # noqa: F401
                                              changes, fit, lookup, position, record)

STATE = STATE_BYTES
# Joint: every byte looked up by the whole state and the key; factored (the runtime's,
# `neuralplay.training.skier_tables.FACTORED`): by the two or three sources that measured best
# for each byte on held-out episodes. The move by speed and RAM[19] in both.
JOINT = {**{b: STATE + (KEY,) for b in STATE}, MOVE: (14, 19)}
MODELS = {"joint": JOINT, "factored": FACTORED}
COLUMN_TOLERANCE_PX = 6  # the eval's 3 px at the model's half resolution


def play(seed: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """RAM before each console frame and the key held in it, over `steps` steps."""
    env, player = make_env(frameskip=1), HeldRandomPlayer(seed)
    env.reset(seed=seed)
    rams, keys = record(env, [player.act(None) for _ in range(steps)])
    env.close()
    return rams[:-1], keys[:-1]


def one_step(model: dict, tables: dict, episodes: list) -> dict:
    """On episodes the tables were not fit on, frame by frame from the true state: for each
    target, the share of frames whose sources the table saw, and there the change right."""
    seen, right, frames = Counter(), Counter(), 0
    for rams, keys in episodes:
        change = changes(rams)
        for i in range(len(keys) - 1):
            frames += 1
            for target, sources in model.items():
                k = lookup(sources, rams[i], keys[i], rams[i + 1, 15])
                if k in tables[target].exact:
                    seen[target] += 1
                    right[target] += tables[target].exact[k] == change[target][i]
    name = lambda t: t if t == MOVE else f"ram[{t}]"
    return {name(t): {"seen": seen[t] / frames, "right": right[t] / max(seen[t], 1)} for t in model}


def rollout(model: dict, tables: dict, rams: np.ndarray, keys: np.ndarray, start: int, horizon: int,
            ale_state: bool = False) -> dict:
    """The tables rolled out from the true state at console frame `start`; a change whose
    sources a table never saw (nor a speed near) is taken as none, and the column stays
    within the walls. With
    `ale_state`, the state is ALE's own at every frame and only the move is the tables'."""
    ram, pos, unseen, hits, still = rams[start].copy(), position(rams[start]), 0, [], []
    for f in range(start, start + horizon * FRAMES_PER_STEP):
        if ale_state:
            ram = rams[f]
        step = {}
        for target in sorted(model, key=lambda t: TURNED in model[t]):  # the heading's turn first
            turned = int(ram[15]) + step.get(15, 0) if not ale_state else int(rams[f + 1, 15])
            change = tables[target].get(ram, keys[f], turned)
            unseen += change is None
            step[target] = change or 0
        pos = int(np.clip(pos + step.pop(MOVE), *tables["walls"]))
        if not ale_state:
            for b, change in step.items():
                ram[b] += change
        if (f - start) % FRAMES_PER_STEP == FRAMES_PER_STEP - 1:
            true = rams[f + 1, X]
            hits.append(abs(pos / 32 - true) <= COLUMN_TOLERANCE_PX)
            still.append(abs(rams[start, X] - true) <= COLUMN_TOLERANCE_PX)
    return {"tracked": float(np.mean(hits)), "held_still": float(np.mean(still)),
            "unseen": unseen / (horizon * FRAMES_PER_STEP * len(model))}


def measure(episodes: int, fit_count: int, steps: int, rollouts: int, horizon: int, seed: int) -> dict:
    if not 0 < fit_count < episodes:
        raise UserError(f"--fit {fit_count}: must be at least 1 and below --episodes {episodes}")
    if steps <= horizon:
        raise UserError(f"--steps {steps}: must be above --horizon {horizon}")
    played = [play(seed + e, steps) for e in range(episodes)]
    fitted, held_out = played[:fit_count], played[fit_count:]
    rng = np.random.default_rng(seed)
    starts = [rng.integers(0, len(keys) - horizon * FRAMES_PER_STEP - 1, rollouts) // FRAMES_PER_STEP
              * FRAMES_PER_STEP for _, keys in held_out]
    out = {"episodes": episodes, "fit": fit_count, "steps": steps, "horizon": horizon, "seed": seed,
           "state_bytes": list(STATE), "rollouts": rollouts * len(held_out)}
    for name, model in MODELS.items():
        tables = fit(model, fitted)
        every = [(rams, keys, int(start)) for (rams, keys), episode_starts in zip(held_out, starts)
                 for start in episode_starts]
        runs = [rollout(model, tables, rams, keys, start, horizon) for rams, keys, start in every]
        moved = [rollout(model, tables, rams, keys, start, horizon, ale_state=True) for rams, keys, start in every]
        mean = lambda figure: float(np.mean([r[figure] for r in runs]))
        out[name] = {"sources": {("move" if t == MOVE else f"ram[{t}]"): list(src) for t, src in model.items()},
                     "one_step": one_step(model, tables, held_out), "tracked": mean("tracked"),
                     "unseen": mean("unseen"), "per_rollout": runs,
                     "tracked_on_ale_state": float(np.mean([r["tracked"] for r in moved]))}
    out["held_still"] = float(np.mean([r["held_still"] for r in runs]))
    return out


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=int, default=6, help="episodes played (default 6)")
    ap.add_argument("--fit", type=int, default=4, help="of them, the first ones the tables are fit on (default 4)")
    ap.add_argument("--steps", type=int, default=1500, help="steps an episode (4 console frames each; default 1500)")
    ap.add_argument("--rollouts", type=int, default=12, help="rollouts on each of the other episodes (default 12)")
    ap.add_argument("--horizon", type=int, default=300, help="steps a rollout (default 300)")
    ap.add_argument("--seed", type=int, default=0, help="first episode's seed, and the starts' (default 0)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    try:
        out = measure(args.episodes, args.fit, args.steps, args.rollouts, args.horizon, args.seed)
    except UserError as e:
        print(f"skier_ram: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{out['rollouts']} rollouts of {out['horizon']} steps from the true state; start column held: "
          f"column within {COLUMN_TOLERANCE_PX} px in {out['held_still']:.1%} of the steps")
    for name in MODELS:
        m = out[name]
        print(f"{name}: column within {COLUMN_TOLERANCE_PX} px {m['tracked']:.1%} (on ALE's state every frame "
              f"{m['tracked_on_ale_state']:.1%}), lookups never seen {m['unseen']:.1%}; "
              "one frame on (sources seen, change right there): "
              + ", ".join(f"{t} {f['seen']:.1%} ({f['right']:.2%})" for t, f in m["one_step"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
