"""How much of the skier's future the frames a model starts from leave open.

A rollout of `neuralplay eval skiing` starts from the last few real frames (the context)
and the actions between them; nothing else. ALE's state holds more than its screen (the
skier's speed and the fractions of its position), so two ALE states can show the very same
context and still send the skier to different places under the same keys. Such a pair
bounds every model that reads only the frames: it gives one future for both.

For each start of the eval's rollout plan (same seed, same starts), the held-out episode is
replayed in ALE (its seed is in its file name; the replay must give the stored frames), and
at the frame before the context one RAM byte is moved by a small step. Where the context
that follows is frame for frame identical to the real one at the model's resolution, the
changed state is a *twin* of the real start; it is played on with the episode's actions
for the horizon. The moved byte must stay within the values that byte takes in the replays
of the held-out episodes, so that the twin differs from the real game only by a value the
game itself uses (this keeps it close to, not proven among, the states ALE reaches).

Printed, over the starts: how many have twins, and for the twins the skier persistence
against ALE's own future (the eval's measure, 3 px) and the share of frames where the two
skiers lie more than twice the tolerance apart (or one of them is not shown): in those
frames no drawing is within tolerance of both, so on the real start and its twin together
any frame-reading model keeps the skier in at most 1 - separated / 2 of the frames.

    python tools/skier_twins.py --data DATA [--checkpoint F | --frames N] [--rollouts 24] [--horizon 300]
        [--steps 1] [--seed 0] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from neuralplay.errors import UserError
from neuralplay.games.skiing import SkiingGame, downsample, to_palette
from neuralplay.runtime.skiing import load_dynamics
from neuralplay.training.skiing_data import load_episode
from neuralplay.training.skiing_dynamics_eval import (SKIER_TOLERANCE_PX, centroids_match, heldout_paths,
                                                      interleave_policies, plan_rollouts, seed_of, skier_centroid)

RAM_BYTES = 128


class Replay:
    """ALE Skiing replaying a held-out episode; frames at the model's resolution, read off
    ALE's own palette indices through a table (much faster than converting RGB)."""

    def __init__(self, game: SkiingGame, path: Path, episode: dict):
        self.game, self.ale = game, game.env.unwrapped.ale
        self.palette = np.zeros(256, np.uint8)  # ALE's colour index -> ours, filled as colours appear
        self.known = np.zeros(256, bool)
        seed = seed_of(path)
        game.reset(seed)
        self.states, rams = [self.ale.cloneState()], [self.ale.getRAM().copy()]
        for t, action in enumerate(episode["actions"]):
            game.step(int(action))
            if not np.array_equal(self.frame(), episode["frames"][t + 1]):
                raise UserError(f"{path.name} does not replay in ALE from seed {seed}: collect it again "
                                "with `neuralplay collect skiing`")
            self.states.append(self.ale.cloneState())
            rams.append(self.ale.getRAM().copy())
        self.rams = np.array(rams)

    def frame(self) -> np.ndarray:
        raw = self.ale.getScreen()
        new = np.unique(raw[~self.known[raw]])
        if len(new):  # colours not met yet: read them off the RGB screen once
            seen = to_palette(self.ale.getScreenRGB())
            for value in new:
                at = np.argwhere(raw == value)[0]
                self.palette[value], self.known[value] = seen[tuple(at)], True
        return downsample(self.palette[raw])

    def play(self, state: int | None, actions: np.ndarray, byte: int | None = None, value: int = 0) -> np.ndarray:
        """From the state of frame `state` (None: where ALE is now), with RAM `byte` set to
        `value`, the frames the actions give (len(actions), 105, 80)."""
        if state is not None:
            self.ale.restoreState(self.states[state])
        if byte is not None:
            self.ale.setRAM(byte, value)
        out = []
        for action in actions:
            self.game.step(int(action))
            out.append(self.frame())
        return np.stack(out)


def twin_scores(twin: np.ndarray, real: np.ndarray) -> tuple[float, float] | None:
    """A twin's frames against the real ones (H, 105, 80): the eval's skier persistence and
    the share of frames whose skiers are too far apart for one drawing to match both; over
    the frames where the real game shows the skier (None if there are none)."""
    kept, separated = [], []
    for got, want in zip(twin, real):
        a, b = skier_centroid(got), skier_centroid(want)
        match = centroids_match(a, b)
        if match is None:
            continue
        kept.append(match)
        separated.append(a is None or not centroids_match(a, b, 2 * SKIER_TOLERANCE_PX))
    return (float(np.mean(kept)), float(np.mean(separated))) if kept else None


def start_twins(replay: Replay, episode: dict, start: int, past: int, horizon: int, steps: int,
                values: list[np.ndarray]) -> list[dict]:
    """The twins of one start: each RAM byte moved by +-1..steps where the context stays the same."""
    before = start - past  # the state whose next `past` frames are the context
    context_actions = episode["actions"][before:start]
    context = episode["frames"][before + 1:start + 1]
    future = episode["actions"][start:start + horizon]
    real = episode["frames"][start + 1:start + 1 + horizon]
    ram = replay.rams[before]
    twins = []
    for byte in range(RAM_BYTES):
        for delta in [d for step in range(1, steps + 1) for d in (-step, step)]:
            value = int(ram[byte]) + delta
            if not (0 <= value < 256) or value not in values[byte]:
                continue
            if not np.array_equal(replay.play(before, context_actions, byte, value), context):
                continue
            scores = twin_scores(replay.play(None, future), real)  # on from the twin's own state
            if scores is not None:
                twins.append({"byte": byte, "delta": delta, "persistence": scores[0], "separated": scores[1]})
    return twins


def summarise(per_start: list[dict]) -> dict:
    """Over the starts: how many have twins, the twins' persistence and separation, the
    bound on a start and its most separated twin together, and the bytes whose twins part."""
    twins = [t for start in per_start for t in start["twins"]]
    parting = [t for t in twins if t["persistence"] < 1.0]
    bytes_parting: dict[int, list[float]] = {}
    for t in parting:
        bytes_parting.setdefault(t["byte"], []).append(t["persistence"])
    bounds = [1 - max((t["separated"] for t in start["twins"]), default=0.0) / 2 for start in per_start]
    return {"starts": len(per_start), "starts_with_twins": sum(bool(s["twins"]) for s in per_start),
            "starts_with_parting_twins": sum(any(t["persistence"] < 1.0 for t in s["twins"]) for s in per_start),
            "twins": len(twins), "parting_twins": len(parting),
            "twin_persistence": float(np.mean([t["persistence"] for t in twins])) if twins else None,
            "lowest_twin_persistence": min((t["persistence"] for t in twins), default=None),
            "mean_bound": float(np.mean(bounds)) if bounds else None,
            "bytes_parting": {str(b): {"twins": len(v), "persistence": float(np.mean(v))}
                              for b, v in sorted(bytes_parting.items())}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="collected Skiing data (its heldout/ is used)")
    parser.add_argument("--checkpoint", help="folder of the dynamics graphs whose context is read (default: shipped)")
    parser.add_argument("--frames", type=int,
                        help="context frames to hold the same (default: what the checkpoint reads, its context - 1)")
    parser.add_argument("--rollouts", type=int, default=24, help="starts, planned as `eval skiing` plans them")
    parser.add_argument("--horizon", type=int, default=300)
    parser.add_argument("--steps", type=int, default=1, help="each RAM byte is moved by +-1 .. this")
    parser.add_argument("--seed", type=int, default=0, help="the eval's seed: the same starts")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        if min(args.rollouts, args.horizon, args.steps, 1 if args.frames is None else args.frames) < 1:
            raise UserError("--rollouts, --horizon, --steps and --frames take a whole number of at least 1")
        context = 1 + (args.frames or int(load_dynamics(args.checkpoint)[1].meta["model"]["context"]) - 1)
        paths = heldout_paths(Path(args.data) / "heldout")
        episodes = [load_episode(p) for p in paths]
        plan, horizon = plan_rollouts([len(e["actions"]) for e in episodes], interleave_policies(paths),
                                      args.rollouts, args.horizon, context - 1, np.random.default_rng(args.seed))
        game = SkiingGame()
        replays = {e: Replay(game, paths[e], episodes[e]) for e in sorted({e for e, _ in plan})}
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    values = [np.unique(np.concatenate([r.rams[:, b] for r in replays.values()])) for b in range(RAM_BYTES)]
    per_start = []
    for e, s in plan:
        replay = replays[e]  # its ALE is the shared game: its states are restored before each use
        twins = start_twins(replay, episodes[e], s, context - 1, horizon, args.steps, values)
        per_start.append({"start": f"{paths[e].name}@{s}", "twins": twins})
    result = {"horizon": horizon, "context_frames": context - 1, **summarise(per_start), "per_start": per_start}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['starts']} starts, context {context - 1} frames, horizon {horizon}: "
          f"{result['starts_with_twins']} have twins (RAM moved by up to {args.steps}, context unchanged), "
          f"{result['starts_with_parting_twins']} a twin whose skier parts from ALE's")
    if result["twins"]:
        print(f"twins: {result['twins']}, {result['parting_twins']} parting; their skier persistence against ALE's "
              f"{result['twin_persistence']:.1%} (lowest {result['lowest_twin_persistence']:.1%})")
        print(f"a model reading only the context, on each start and its most separated twin together: at most "
              f"{result['mean_bound']:.1%} skier persistence on average")
        for byte, facts in result["bytes_parting"].items():
            print(f"  RAM[{byte}]: {facts['twins']} parting twins, persistence {facts['persistence']:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
