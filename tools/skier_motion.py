"""What a `--skier-motion` dynamics model's two halves do, each apart from the other.

1. Velocity: from the same starts as `neuralplay eval skiing` (its rollout plan), the
   skier's column is integrated from the velocity head alone while the model reads ALE's
   real frames (teacher-forced frames, open-loop column): the share of steps whose column
   stays within the persistence tolerance (3 px) of ALE's skier, against the start column
   held still. This says whether the velocities would keep the skier where ALE has it if
   the frames the head reads were right.
2. Following: from real frames at random held-out steps, the next frame is drawn with the
   skier's column told d pixels away from where the frames have it; the mean distance the
   drawn skier moved, for each d. A model that draws the skier where its column says moves
   it about d.
3. The drawing ceiling: the eval's open loop with the skier's column told ALE's at every
   step: the skier persistence (and its misses) that a perfect column would give this model,
   and the velocity head's tracking (as in 1) on the frames this loop draws.
4. Feedback: the eval's open loop as the runtime plays it (the column integrated from the
   velocities), with the recent motion the velocity head reads taken from the runtime's own
   columns (`own`, what `eval skiing` measures), from ALE's (`real`), or held at 0 (`none`):
   how much of the lost persistence is the head reading its own integrated motion back.

    python tools/skier_motion.py --checkpoint F --tokenizer TOK --data DATA [--rollouts 24] [--horizon 300]
        [--samples 60] [--seed 0] [--threads 2] [--json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from neuralplay.errors import UserError
from neuralplay.games.skiing import skier_x
from neuralplay.runtime.skiing import MOTION_FRAMES, NeuralSkiing, Sampling, recent_motion, skier_columns
from neuralplay.training.skiing_data import load_episode
from neuralplay.training.skiing_dynamics_eval import (SKIER_TOLERANCE_PX, centroids_match, context_before,
                                                      heldout_paths, interleave_policies, miss_kind, plan_rollouts,
                                                      skier_centroid)

TOLD_PX = (-4, -2, -1, 0, 1, 2, 4)


def velocity_tracking(model: NeuralSkiing, episodes: list[dict], plan: list[tuple[int, int]], horizon: int) -> dict:
    """Share of steps whose integrated column is within tolerance of ALE's, and the same for
    the start column held (over the steps where ALE shows the skier)."""
    tracked, held = [], []
    for e, s in plan:
        ep = episodes[e]
        real = skier_columns(ep["frames"][s:s + horizon + 1])
        column = real[0]
        if np.isnan(column):  # no skier to start from
            continue
        for k in range(1, horizon + 1):
            model.reset(*context_before(ep, s + k - 1, model.frames_read))
            column = column + model.velocities[ep["actions"][s + k - 1]]
            if not np.isnan(real[k]):
                tracked.append(abs(column - real[k]) <= SKIER_TOLERANCE_PX)
                held.append(abs(real[0] - real[k]) <= SKIER_TOLERANCE_PX)
    if not tracked:
        raise UserError("no rollout starts from a frame that shows the skier: collect again with "
                        "`neuralplay collect skiing`")
    return {"velocity_tracking": float(np.mean(tracked)), "held_column_tracking": float(np.mean(held)),
            "steps": len(tracked)}


class ReadsGivenRecent(NeuralSkiing):
    """Neural Skiing whose velocity head reads the recent motion it is given (`given`, (1,))
    instead of its own columns'; None: its own."""

    given: np.ndarray | None = None

    def recent(self) -> np.ndarray:
        return super().recent() if self.given is None else self.given


def drawing_ceiling(model: NeuralSkiing, episodes: list[dict], plan: list[tuple[int, int]], horizon: int) -> dict:
    """The open loop with the skier's column told ALE's at every step: persistence and its
    misses, and the velocity head's tracking on the frames it draws."""
    kept, tracked, misses = [], [], {"no_skier": 0, "row": 0, "column": 0}
    for e, s in plan:
        ep = episodes[e]
        real = skier_columns(ep["frames"][s:s + horizon + 1])
        model.reset(*context_before(ep, s, model.frames_read))
        column = real[0]
        for k in range(1, horizon + 1):
            action = int(ep["actions"][s + k - 1])
            column = column + model.velocities[action]  # where the head alone would have it
            if not np.isnan(real[k]):  # the next column: ALE's (where ALE shows no skier, the runtime's own)
                model.columns[-1] = real[k - 1] if not np.isnan(real[k - 1]) else real[k]
                model.velocities[action] = real[k] - model.columns[-1]
            drawn = model.step(action)
            want = skier_centroid(ep["frames"][s + k])
            if want is None:
                continue
            got = skier_centroid(drawn)
            kept.append(bool(centroids_match(got, want)))
            if not kept[-1]:
                misses[miss_kind(got, want)] += 1
            if not np.isnan(column):
                tracked.append(abs(column - real[k]) <= SKIER_TOLERANCE_PX)
    if not kept:
        raise UserError("ALE shows no skier in the held-out rollouts: collect again with `neuralplay collect skiing`")
    return {"skier_persistence": float(np.mean(kept)),
            "skier_misses": {kind: n / len(kept) for kind, n in misses.items()},
            "velocity_tracking": float(np.mean(tracked)) if tracked else None}


def persistence_reading_recent(model: ReadsGivenRecent, episodes: list[dict], plan: list[tuple[int, int]],
                               horizon: int, source: str) -> float | None:
    """The eval's skier persistence with the velocity head reading the recent motion of
    `source`: "own" (the runtime's columns), "real" (ALE's) or "none" (0)."""
    kept = []
    for e, s in plan:
        ep = episodes[e]
        real = recent_motion(skier_columns(ep["frames"][max(0, s - MOTION_FRAMES):s + horizon + 1]))
        lead = min(s, MOTION_FRAMES)  # real[lead + k]: the recent motion up to frame s + k
        model.given = {"own": None, "real": real[lead:lead + 1], "none": np.zeros(1, np.float32)}[source]
        model.reset(*context_before(ep, s, model.frames_read))  # the prefill reads the source's motion too
        for k in range(1, horizon + 1):
            if source == "real":
                model.given = real[lead + k:lead + k + 1]
            drawn = model.step(int(ep["actions"][s + k - 1]))
            match = centroids_match(skier_centroid(drawn), skier_centroid(ep["frames"][s + k]))
            if match is not None:
                kept.append(match)
    model.given = None
    return float(np.mean(kept)) if kept else None


def following(model: NeuralSkiing, episodes: list[dict], samples: int, rng: np.random.Generator) -> dict:
    """For each told offset d: the mean column change of the drawn skier, and how often it vanished."""
    out = {}
    for told in TOLD_PX:
        moved, vanished = [], 0
        for i in range(samples):
            ep = episodes[i % len(episodes)]
            if len(ep["actions"]) <= model.frames_read:
                continue
            s = int(rng.integers(model.frames_read, len(ep["actions"])))
            model.reset(*context_before(ep, s, model.frames_read))
            if np.isnan(model.columns[-1]):
                continue
            model.velocities[:] = told  # the next column: where the frames have it, plus d
            drawn = skier_x(model.step(int(ep["actions"][s])))
            if drawn is None:
                vanished += 1
            else:
                moved.append(drawn - model.columns[-2])
        out[f"{told:+d}"] = {"moved_px": float(np.mean(moved)) if moved else None, "vanished": vanished}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="folder of a --skier-motion model's graphs")
    parser.add_argument("--tokenizer", help="folder of its tokenizer's graphs (default: shipped)")
    parser.add_argument("--data", required=True, help="collected Skiing data (its heldout/ is used)")
    parser.add_argument("--rollouts", type=int, default=24)
    parser.add_argument("--horizon", type=int, default=300)
    parser.add_argument("--samples", type=int, default=60, help="steps drawn for each told offset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime threads")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        model = ReadsGivenRecent(args.checkpoint, args.tokenizer, threads=args.threads, sampling=Sampling(steps=None))
        if not model.skier_motion:
            raise UserError(f"{args.checkpoint} has no skier motion: train one with `neuralplay train "
                            "skiing-dynamics --skier-motion`")
        paths = heldout_paths(Path(args.data) / "heldout")
    except UserError as err:
        print(f"error: {err}")
        return 1
    try:
        episodes = [load_episode(p) for p in paths]
        rng = np.random.default_rng(args.seed)
        plan, horizon = plan_rollouts([len(e["actions"]) for e in episodes], interleave_policies(paths),
                                      args.rollouts, args.horizon, model.context - 1, rng)
        result = {**velocity_tracking(model, episodes, plan, horizon), "horizon": horizon, "rollouts": len(plan),
                  "following": following(model, episodes, args.samples, rng),
                  "told_real_column": drawing_ceiling(model, episodes, plan, horizon),
                  "persistence_reading_recent": {source: persistence_reading_recent(model, episodes, plan, horizon,
                                                                                    source)
                                                 for source in ("own", "real", "none")}}
    except UserError as err:
        print(f"error: {err}")
        return 1
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"velocity alone, on real frames: the skier within {SKIER_TOLERANCE_PX:g} px of ALE's in "
              f"{result['velocity_tracking']:.1%} of {result['steps']} steps (start column held: "
              f"{result['held_column_tracking']:.1%})")
        for told, got in result["following"].items():
            moved = "n/a" if got["moved_px"] is None else f"{got['moved_px']:+.2f} px"
            print(f"told {told} px: drawn skier moved {moved} (vanished {got['vanished']})")
        ceiling = result["told_real_column"]
        print(f"told ALE's column every step: skier persistence {ceiling['skier_persistence']:.1%} (lost: "
              + ", ".join(f"{kind} {share:.1%}" for kind, share in ceiling["skier_misses"].items())
              + "); the velocity head on those frames tracks "
              + ("n/a" if ceiling["velocity_tracking"] is None else f"{ceiling['velocity_tracking']:.1%}"))
        print("the open loop with the head reading the recent motion of its own columns / ALE's / none: "
              + " / ".join("n/a" if v is None else f"{v:.1%}" for v in result["persistence_reading_recent"].values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
