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
  console frame before its last), and the slope's scroll over the context (the shift that
  best aligns consecutive frames, `tools/skiing_scroll.py`) must match the candidates'
  downhill motion (a table of speed and RAM[20]) within 1.5 rows;
- the survivors are stepped by the tables under the episode's keys for the horizon; the
  column is their median (of a seeded sample of 2,000 where more are left). Scored: the
  share of steps where it is within 6 px (the eval's 3 px at 105x80) of ALE's skier
  (RAM[25]); and how many starts every context frame read kept candidates for.
Beside it, the same rollout from ALE's true state at the start, the start column held, and
the two rollouts again with each crash told: when ALE's skier falls (its heading byte
leaves 0-15), the candidates take ALE's speed, heading and timer at that frame. A crash
depends on the slope, which the tables do not see and a world model draws.

    python tools/skier_state.py --data DATA [--frames 7] [--rollouts 24] [--horizon 300]
        [--seed 0] [--no-scroll] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))  # the sibling tools whose tables and alignment this reuses
import skier_ram  # noqa: E402
import skiing_scroll  # noqa: E402

from neuralplay.errors import UserError  # noqa: E402
from neuralplay.games.skiing import SKIER, downsample, make_env, to_palette  # noqa: E402
from neuralplay.training.skiing_data import load_episode  # noqa: E402
from neuralplay.training.skiing_dynamics_eval import (heldout_paths, interleave_policies,  # noqa: E402
                                                      plan_rollouts, seed_of)

F4 = skier_ram.FRAMES_PER_STEP
SPEED, HEADING, B19, B20, TIMER = skier_ram.STATE
COLUMN, FALLEN_FROM = skier_ram.X, 16  # headings 0-15 ski; a fall sets a value above
SCROLL_BYTES, DOWNHILL_SUBPIXEL = slice(86, 94), 100  # the objects' rows; the slope's sub-pixel byte
SHIFTS = [(dy, 0) for dy in range(8)]
SCROLL_TOLERANCE = 1.5  # rows at 105x80: the sub-row phase and the rounding at both ends
MAX_CANDIDATES = 2000  # a rollout steps at most this many (a seeded sample)


def replay(path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """A collected episode replayed in ALE a console frame at a time: the RAM before each
    frame (and after the last), the key held in it, and the episode."""
    episode, seed = load_episode(path), seed_of(path)
    env = make_env(frameskip=1)
    env.reset(seed=seed)
    rams, keys = skier_ram.record(env, [int(a) for a in episode["actions"]])
    last = downsample(to_palette(env.unwrapped.ale.getScreenRGB()))
    env.close()
    if not np.array_equal(last, episode["frames"][-1]):
        raise UserError(f"{path.name} does not replay in ALE from seed {seed}: collect it again with "
                        "`neuralplay collect skiing`")
    return rams, keys, episode


def sprite(frame: np.ndarray) -> tuple[tuple | None, int]:
    """The skier's sprite in a 105x80 frame as a hashable mask, and its leftmost column."""
    ys, xs = np.nonzero(frame == SKIER)
    if not len(xs):
        return None, 0
    mask = frame[ys.min():ys.max() + 1, xs.min():xs.max() + 1] == SKIER
    return (mask.shape, np.packbits(mask).tobytes()), int(xs.min())


class Stepper:
    """skier_ram's factored tables as dense arrays, stepping many candidate states at once;
    the downhill motion (1/32 px a frame) by speed and RAM[20]; and what each sprite shows."""

    def __init__(self, train: list):
        tables = skier_ram.fit(skier_ram.FACTORED, [(rams, keys) for rams, keys, _ in train])
        self.walls = tables["walls"]
        self.turn, self.timer = self.dense(tables[HEADING], 3), self.dense(tables[TIMER], 3)
        self.speed, self.b19, self.b20 = (self.dense(tables[b], 2) for b in (SPEED, B19, B20))
        self.move = self.dense(tables[skier_ram.MOVE], 2)
        self.downhill = self.downhill_table(train)
        self.headings, self.offsets = defaultdict(set), defaultdict(set)
        for rams, _, episode in train:
            for t in range(1, len(episode["frames"])):
                mask, left = sprite(episode["frames"][t])
                if mask is not None:
                    shown = rams[F4 * t - 1]  # a frame shows the RAM of the console frame before its last
                    self.headings[mask].add(int(shown[HEADING]))
                    self.offsets[mask].add(int(skier_ram.position(shown)) // 32 - 2 * left)
        if not self.offsets:
            raise UserError("no frame of the training episodes shows the skier: collect again with "
                            "`neuralplay collect skiing`")
        self.any_offset = (min(min(o) for o in self.offsets.values()), max(max(o) for o in self.offsets.values()))
        self.states = np.unique(np.concatenate([rams[:, list(skier_ram.STATE)] for rams, _, _ in train]), axis=0)

    @staticmethod
    def dense(table: skier_ram.Table, sources: int) -> np.ndarray:
        """A table's change for every value of its sources (bytes 0-255; the key 0-2 last)."""
        shape = (256,) * (sources - 1) + ((3,) if skier_ram.KEY in table.sources else (256,))
        out, ram = np.zeros(shape, np.int64), np.zeros(128, np.int64)
        for index in np.ndindex(*shape):
            values = dict(zip(table.sources, index))
            for source, value in values.items():
                if isinstance(source, int):
                    ram[source] = value
            out[index] = table.get(ram, values.get(skier_ram.KEY, 0), values.get(skier_ram.TURNED)) or 0
        return out

    @staticmethod
    def downhill_table(train: list) -> np.ndarray:
        """The slope's motion a frame in 1/32 px: the objects' rows moved times 32 plus the
        sub-pixel byte's change, most common by speed and RAM[20]."""
        counts = defaultdict(Counter)
        for rams, _, _ in train:
            rows = np.diff(rams[:, SCROLL_BYTES], axis=0) % 256
            scrolled = np.array([Counter(r.tolist()).most_common(1)[0][0] for r in rows])
            motion = 32 * scrolled + np.diff(rams[:, DOWNHILL_SUBPIXEL])
            for i, m in enumerate(motion):
                counts[(rams[i, SPEED], rams[i, B20])][int(m)] += 1
        out = np.zeros((256, 256), np.int64)
        for (speed, b20), c in counts.items():
            out[speed, b20] = c.most_common(1)[0][0]
        return out

    def step(self, c: np.ndarray, key: int) -> np.ndarray:
        """Candidates (N, 7: the five bytes, column in 1/32 px, downhill motion summed) one frame on."""
        speed, heading, b19, b20, timer, column, downhill = (c[:, i] for i in range(7))
        h, t, s, x, y = heading % 256, timer % 256, speed % 256, b19 % 256, b20 % 256
        turned = (heading + self.turn[h, t, key]) % 256
        return np.stack([speed + self.speed[s, turned], turned, b19 + self.b19[turned, x],
                         b20 + self.b20[turned, y], timer + self.timer[h, t, key],
                         np.clip(column + self.move[s, x], *self.walls), downhill + self.downhill[s, y]], 1)

    def agree(self, c: np.ndarray, frame: np.ndarray) -> np.ndarray:
        """Which candidates the frame's skier sprite allows (all where it shows none)."""
        mask, left = sprite(frame)
        if mask is None:
            return np.ones(len(c), bool)
        offset = c[:, 5] // 32 - 2 * left
        if mask not in self.headings:  # a sprite never seen: only the column, loosely
            return (offset >= self.any_offset[0]) & (offset <= self.any_offset[1])
        return np.isin(c[:, 1], list(self.headings[mask])) & np.isin(offset, list(self.offsets[mask]))


def keep(c: np.ndarray, agrees: np.ndarray) -> np.ndarray:
    """The candidates that agree, or all of them where none does (the reading failed)."""
    return c[agrees] if agrees.any() else c


def read_state(stepper: Stepper, episode: dict, keys: np.ndarray, start: int, frames: int,
               scroll: bool = True) -> tuple[np.ndarray | None, bool]:
    """Candidate states at console frame 4*start - 1 agreeing with the `frames` context frames
    up to `start` (their sprites, and with `scroll` the slope's scroll), and whether every
    frame read kept some; None where the first of them shows no skier. The reset screen
    (frame 0) is not read: it shows no console frame before it."""
    first = max(1, start - frames + 1)
    mask, left = sprite(episode["frames"][first])
    if mask is None:
        return None, False
    low, high = (min(o), max(o)) if (o := stepper.offsets.get(mask)) else stepper.any_offset
    columns = np.arange((2 * left + low - 1) * 32, (2 * left + high + 2) * 32)
    n, m = len(stepper.states), len(columns)
    c = np.column_stack([np.repeat(stepper.states, m, 0), np.tile(columns, n), np.zeros(n * m, np.int64)])
    agrees = stepper.agree(c, episode["frames"][first])
    read = bool(agrees.any())
    c = keep(c, agrees)
    for t in range(first + 1, start + 1):
        for f in range(F4 * t - F4 - 1, F4 * t - 1):
            c = stepper.step(c, int(keys[f]))
        agrees = stepper.agree(c, episode["frames"][t])
        read &= bool(agrees.any())
        c = np.unique(keep(c, agrees), axis=0)
    if not scroll:
        return c, read
    scrolled = sum(skiing_scroll.best_shift(episode["frames"][t - 1], episode["frames"][t], SHIFTS)[0]
                   for t in range(first + 1, start + 1))
    agrees = np.abs(c[:, 6] / 64 - scrolled) <= SCROLL_TOLERANCE
    return keep(c, agrees), read and bool(agrees.any())


def true_state(rams: np.ndarray, start: int) -> np.ndarray:
    """ALE's own state at console frame 4*start - 1, as the one candidate."""
    shown = rams[F4 * start - 1]
    return np.array([[*shown[list(skier_ram.STATE)], skier_ram.position(shown), 0]])


def roll(stepper: Stepper, c: np.ndarray | None, rams: np.ndarray, keys: np.ndarray, start: int, horizon: int,
         crash_told: bool, rng: np.random.Generator) -> dict:
    """The candidates stepped for `horizon` steps; the share of steps whose median column is
    within 6 px of ALE's skier, and the falls ALE's skier took."""
    if c is None:
        return {"tracked": 0.0, "candidates": 0, "falls": 0}
    candidates, hits, falls = len(c), [], 0
    for f in range(F4 * start - 1, F4 * (start + horizon) - 1):
        if len(c) > MAX_CANDIDATES:
            c = c[rng.choice(len(c), MAX_CANDIDATES, replace=False)]
        c = stepper.step(c, int(keys[f]))
        if rams[f + 1, HEADING] >= FALLEN_FROM > rams[f, HEADING]:
            falls += 1
            if crash_told:
                c[:, 0], c[:, 1], c[:, 4] = rams[f + 1, SPEED], rams[f + 1, HEADING], rams[f + 1, TIMER]
        if (f + 2) % F4 == 0:  # console frame f + 1 is 4t - 1: the state frame t shows
            hits.append(abs(np.median(c[:, 5]) / 32 - rams[f + 1, COLUMN]) <= skier_ram.COLUMN_TOLERANCE_PX)
    return {"tracked": float(np.mean(hits)), "candidates": candidates, "falls": falls}


def measure(data: Path, frames: int, rollouts: int, horizon: int, seed: int, scroll: bool = True) -> dict:
    if min(frames, rollouts, horizon) < 1 or seed < 0:
        raise UserError("--frames, --rollouts and --horizon take a whole number of at least 1, "
                        "--seed one of at least 0")
    train_paths = sorted((data / "train").glob("*.npz"))
    if not train_paths:
        raise UserError(f"no training Skiing episodes in {data / 'train'}: run `neuralplay collect skiing` first")
    paths = heldout_paths(data / "heldout")
    stepper = Stepper([replay(p) for p in train_paths])
    held = [replay(p) for p in paths]
    plan, horizon = plan_rollouts([len(e["actions"]) for _, _, e in held], interleave_policies(paths),
                                  rollouts, horizon, frames, np.random.default_rng(seed))
    per_start = []
    for e, s in plan:
        rams, keys, episode = held[e]
        read, all_agreed = read_state(stepper, episode, keys, s, frames, scroll)
        row = {"start": f"{paths[e].name}@{s}", "every_frame_read": all_agreed}
        for name, c in (("from_frames", read), ("from_true_state", true_state(rams, s))):
            for told in (False, True):
                got = roll(stepper, c, rams, keys, s, horizon, told, np.random.default_rng(seed))
                row[name + ("_crash_told" if told else "")] = got["tracked"]
        row["candidates"] = 0 if read is None else len(read)
        row["falls"] = got["falls"]  # ALE's, the same in every rollout of the start
        row["held_still"] = float(np.mean([abs(rams[F4 * s - 1, COLUMN] - rams[F4 * (s + k) - 1, COLUMN])
                                           <= skier_ram.COLUMN_TOLERANCE_PX for k in range(1, horizon + 1)]))
        per_start.append(row)
    figures = ["from_frames", "from_frames_crash_told", "from_true_state", "from_true_state_crash_told",
               "held_still"]
    return {"data": str(data), "frames": frames, "scroll_read": scroll, "horizon": horizon, "starts": len(per_start),
            "starts_read_by_every_frame": sum(r["every_frame_read"] for r in per_start),
            "training_states": len(stepper.states), "falls": sum(r["falls"] for r in per_start),
            **{f: float(np.mean([r[f] for r in per_start])) for f in figures}, "per_start": per_start}


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="collected Skiing data: train/ fits the tables, heldout/ is measured")
    ap.add_argument("--frames", type=int, default=7, help="context frames read (default 7: the shipped model's)")
    ap.add_argument("--rollouts", type=int, default=24, help="starts, planned as `eval skiing` plans them (default 24)")
    ap.add_argument("--horizon", type=int, default=300, help="steps a rollout (default 300)")
    ap.add_argument("--seed", type=int, default=0, help="the eval's seed: the same starts (default 0)")
    ap.add_argument("--no-scroll", action="store_true", help="read only the sprites, not the slope's scroll")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    try:
        out = measure(Path(args.data), args.frames, args.rollouts, args.horizon, args.seed, not args.no_scroll)
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
