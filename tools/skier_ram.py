"""Which of ALE's RAM bytes the skier's sideways motion runs on, and how far a lookup table
of them, fit on a few episodes, carries the skier's column open loop.

A key-driven skier state in the world model would have to carry what ALE carries. This
tool plays Skiing one console frame at a time (each key held for 4 frames, as a step of
`ALE/Skiing-v5` does), with the held-random player of the data, and reads the RAM every
frame. The skier's column is RAM[25], with a sub-pixel part in RAM[99] (signed, 1/32 px);
the skier's own state is taken to be `STATE`: speed (14), heading (15, 16 values), two
bytes that step by one a frame as it turns and gathers speed (19, 20) and the turn timer
(98).

Printed:
- one frame on, from the true state of the episodes not fit on: the share of frames whose
  state and key the tables saw, and there how often each byte's next value is right; the
  same for the sub-pixel move, read off heading, speed and RAM[19] (`MOVE_KEY`: heading and
  speed alone give it right in about three frames of four);
- the tables fit on the first `--fit` episodes, rolled out from the true RAM state at
  random starts of the others under their keys for `--horizon` steps: the share of steps
  whose column is within 6 px (the eval's 3 px at 105x80) of ALE's, the same for the start
  column held still, and the share of frames whose state and key the tables never saw
  (there the state is held as it is).

    python tools/skier_ram.py [--episodes 6] [--fit 4] [--steps 1500] [--rollouts 12]
        [--horizon 300] [--seed 0] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict

import numpy as np

from neuralplay.errors import UserError
from neuralplay.games.skiing import HeldRandomPlayer, make_env

STATE = (14, 15, 19, 20, 98)
MOVE_KEY = (15, 14, 19)  # heading, speed and RAM[19]: what the sub-pixel move is read off
X, SUBPIXEL = 25, 99
FRAMES_PER_STEP = 4
COLUMN_TOLERANCE_PX = 6  # the eval's 3 px at the model's half resolution


def play(seed: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """RAM before each console frame and the key held in it, over `steps` steps."""
    env, player = make_env(frameskip=1), HeldRandomPlayer(seed)
    env.reset(seed=seed)
    ale, rams, keys = env.unwrapped.ale, [], []
    for _ in range(steps):
        key = player.act(None)
        for _ in range(FRAMES_PER_STEP):
            rams.append(ale.getRAM().astype(np.int64))
            keys.append(key)
            env.step(key)
    env.close()
    return np.array(rams), np.array(keys)


def position(ram: np.ndarray) -> np.ndarray:
    """The skier's column in 1/32 px: RAM[25] and its signed sub-pixel byte."""
    return ram[..., X] * 32 + (ram[..., SUBPIXEL] + 128) % 256 - 128


def most_common(table: dict) -> dict:
    return {key: counts.most_common(1)[0][0] for key, counts in table.items()}


def transitions(rams: np.ndarray, keys: np.ndarray):
    """Per console frame: (state, key), the next state, the move's key, the sub-pixel move."""
    state, moves = rams[:, STATE], np.diff(position(rams))
    for i in range(len(keys) - 1):
        yield (tuple(state[i]) + (int(keys[i]),), tuple(state[i + 1]),
               tuple(rams[i, MOVE_KEY]), moves[i])


def fit(episodes: list) -> dict:
    """Tables of the most common outcome: next state for (state, key), sub-pixel move for
    the bytes of MOVE_KEY."""
    nxt, move = defaultdict(Counter), defaultdict(Counter)
    for rams, keys in episodes:
        for key, after, move_key, moved in transitions(rams, keys):
            nxt[key][after] += 1
            move[move_key][moved] += 1
    return {"next": most_common(nxt), "move": most_common(move)}


def one_step(tables: dict, episodes: list) -> dict:
    """On episodes the tables were not fit on, frame by frame from the true state: the share
    of frames whose (state, key) the tables saw, and there each byte's next value right; the
    same for the sub-pixel move and its key."""
    seen, right, move_seen, move_right, frames = 0, np.zeros(len(STATE)), 0, 0, 0
    for rams, keys in episodes:
        for key, after, move_key, moved in transitions(rams, keys):
            frames += 1
            if key in tables["next"]:
                seen += 1
                right += np.equal(tables["next"][key], after)
            if move_key in tables["move"]:
                move_seen += 1
                move_right += tables["move"][move_key] == moved
    return {"state_seen": seen / frames,
            "state_right": {f"ram[{b}]": float(r / max(seen, 1)) for b, r in zip(STATE, right)},
            "move_seen": move_seen / frames, "move_right": move_right / max(move_seen, 1)}


def rollout(tables: dict, rams: np.ndarray, keys: np.ndarray, start: int, horizon: int) -> dict:
    """The tables rolled out from the true state at console frame `start`."""
    state, pos, unseen, hits, still = tuple(rams[start, STATE]), position(rams[start]), 0, [], []
    for f in range(start, start + horizon * FRAMES_PER_STEP):
        pos += tables["move"].get(tuple(state[STATE.index(b)] for b in MOVE_KEY), 0)
        key = state + (int(keys[f]),)
        unseen += key not in tables["next"]
        state = tables["next"].get(key, state)
        if (f - start) % FRAMES_PER_STEP == FRAMES_PER_STEP - 1:
            true = rams[f + 1, X]
            hits.append(abs(pos / 32 - true) <= COLUMN_TOLERANCE_PX)
            still.append(abs(rams[start, X] - true) <= COLUMN_TOLERANCE_PX)
    return {"tracked": float(np.mean(hits)), "held_still": float(np.mean(still)),
            "unseen": unseen / (horizon * FRAMES_PER_STEP)}


def measure(episodes: int, fit_count: int, steps: int, rollouts: int, horizon: int, seed: int) -> dict:
    if not 0 < fit_count < episodes:
        raise UserError(f"--fit {fit_count}: must be at least 1 and below --episodes {episodes}")
    if steps <= horizon:
        raise UserError(f"--steps {steps}: must be above --horizon {horizon}")
    played = [play(seed + e, steps) for e in range(episodes)]
    tables = fit(played[:fit_count])
    rng, runs = np.random.default_rng(seed), []
    for rams, keys in played[fit_count:]:
        last = len(keys) - horizon * FRAMES_PER_STEP - 1
        for start in rng.integers(0, last, rollouts) // FRAMES_PER_STEP * FRAMES_PER_STEP:
            runs.append(rollout(tables, rams, keys, int(start), horizon))
    mean = lambda name: float(np.mean([r[name] for r in runs]))
    return {"episodes": episodes, "fit": fit_count, "steps": steps, "horizon": horizon, "seed": seed,
            "state_bytes": list(STATE), "states_fit": len(tables["next"]),
            "one_step": one_step(tables, played[fit_count:]),
            "rollouts": len(runs), "tracked": mean("tracked"), "held_still": mean("held_still"),
            "unseen": mean("unseen"), "per_rollout": runs}


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
    step = out["one_step"]
    print(f"one frame on, the other episodes: state and key seen in fit {step['state_seen']:.1%} of frames, "
          "there the next value right: "
          + ", ".join(f"{name} {share:.2%}" for name, share in step["state_right"].items()))
    print(f"sub-pixel move: its key (RAM{list(MOVE_KEY)}) seen {step['move_seen']:.1%}, there right {step['move_right']:.2%}")
    print(f"{out['rollouts']} rollouts of {out['horizon']} steps from the true state: column within "
          f"{COLUMN_TOLERANCE_PX} px {out['tracked']:.1%} (start column held {out['held_still']:.1%}); "
          f"frames in states the tables never saw {out['unseen']:.1%} ({out['states_fit']} states fit)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
