"""Skiing episodes for training: frames at the model's resolution as palette indices, the
actions and rewards, one compressed file per episode (`train/` and `heldout/` apart).

Policies: `held-random` (random keys held for random durations), `gates` (steers through
the flags), `crash` (steers into trees and poles on purpose). The two that steer do it by
the skier's heading (`steering="heading"`), or by holding the key toward the target
(`"direct"`), which leaves the skier standing sideways most of the time; the shipped
models were trained on `"direct"` episodes.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from neuralplay.errors import UserError
from neuralplay.games.skiing import HUD_ROWS, HeldRandomPlayer, SkiingGame, TargetPlayer, downsample, to_palette

POLICIES = ("held-random", "gates", "crash")
STEERING = ("heading", "direct")  # how `gates` and `crash` steer (games.skiing.TargetPlayer)
FORMAT = "skiing-episode-v1"


def make_player(policy: str, seed: int, steering: str = "heading"):
    if policy == "held-random":
        return HeldRandomPlayer(seed)
    return TargetPlayer("gates" if policy == "gates" else "crash", seed=seed, steer=steering)


def play_episode(policy: str, seed: int, max_steps: int, frameskip: int = 4, progress=None,
                 steering: str = "heading") -> dict:
    """One seeded episode -> frames (T+1, 105, 80) uint8, actions (T,), rewards (T,)."""
    game, player = SkiingGame(frameskip=frameskip), make_player(policy, seed, steering)
    game.reset(seed)
    full = to_palette(game.frame)
    frames, actions, rewards = [downsample(full)], [], []
    for _ in range(max_steps):
        a = player.act(full)
        rewards.append(game.step(a))
        actions.append(a)
        full = to_palette(game.frame)
        frames.append(downsample(full))
        if progress is not None:
            progress.update(1)
        if game.over:
            break
    return {"frames": np.stack(frames), "actions": np.array(actions, np.int64),
            "rewards": np.array(rewards, np.float32)}


def still(frames: np.ndarray) -> np.ndarray:
    """(T - 1,) bool: the steps after which nothing but the HUD changed (the skier stands, the
    slope does not move)."""
    return (frames[1:, HUD_ROWS:] == frames[:-1, HUD_ROWS:]).all(axis=(1, 2))


def still_steps(frames: np.ndarray) -> int:
    return int(still(frames).sum())


def save_npz(path: Path, **arrays) -> None:
    """A compressed .npz written whole, then moved in place: no reader sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def save_episode(path: Path, episode: dict, policy: str, seed: int) -> None:
    save_npz(path, **episode, policy=np.array(policy), seed=np.array(seed), format=np.array(FORMAT))


def load_episode(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as f:
            if str(f["format"]) != FORMAT:
                raise ValueError("wrong format")
            return {k: f[k] for k in ("frames", "actions", "rewards")}
    except (OSError, KeyError, ValueError) as err:
        raise UserError(f"{path} is not a Skiing episode ({err}): collect again with "
                        "`neuralplay collect skiing`") from None


def episode_paths(folder: Path) -> list[Path]:
    """The episode files of a folder, sorted; a one-line error if there are none."""
    paths = sorted(folder.glob("*.npz"))
    if not paths:
        raise UserError(f"no Skiing episodes in {folder}: run `neuralplay collect skiing` first")
    return paths


def load_frames(folder: Path, limit: int | None = None) -> np.ndarray:
    """All frames of the episodes in a folder, (N, 105, 80) uint8."""
    frames = [load_episode(p)["frames"] for p in episode_paths(folder)[:limit]]
    return np.concatenate(frames)


@dataclass
class SkiingCollectConfig:
    out: str
    episodes_per_policy: int = 6
    heldout_per_policy: int = 1
    max_steps: int = 1500
    seed: int = 0
    steering: str = "heading"  # how `gates` and `crash` steer: one of STEERING


def collect(cfg: SkiingCollectConfig, show_progress: bool = True) -> dict:
    from tqdm import tqdm

    if cfg.steering not in STEERING:
        raise UserError(f"unknown steering {cfg.steering!r}: one of {', '.join(STEERING)}")
    out = Path(cfg.out)
    plan = []
    for p_i, policy in enumerate(POLICIES):
        for e in range(cfg.episodes_per_policy + cfg.heldout_per_policy):
            split = "heldout" if e >= cfg.episodes_per_policy else "train"
            plan.append((split, policy, cfg.seed * 10_000 + p_i * 1000 + e))
    summary = {"config": asdict(cfg), "splits": {"train": {}, "heldout": {}}}
    with tqdm(total=len(plan) * cfg.max_steps, desc="collect skiing", unit="step",
              disable=not show_progress) as bar:
        for split, policy, seed in plan:
            ep = play_episode(policy, seed, cfg.max_steps, progress=bar, steering=cfg.steering)
            save_episode(out / split / f"{policy}-{seed}.npz", ep, policy, seed)
            facts = summary["splits"][split].setdefault(policy, {"episodes": 0, "steps": 0, "still_steps": 0})
            facts["episodes"] += 1
            facts["steps"] += len(ep["actions"])
            facts["still_steps"] += still_steps(ep["frames"])
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def collect_recordings(folder: Path, out: Path) -> dict:
    """Real-engine Skiing recordings in a folder -> episodes in out/train/ (recorded-*.npz),
    beside the agents' episodes, so the tokenizer (and later the dynamics) train on them."""
    from neuralplay.recording.format import SUFFIX, read

    written = {"recordings": 0, "steps": 0}
    for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
        rec = read(path)
        if rec.header.get("game") != "skiing" or "frame_real" not in rec.arrays:
            continue
        frames, actions = rec.arrays["frame_real"], rec.arrays["action"]
        starts = list(np.flatnonzero(actions < 0)) + [len(actions)]
        for n, (a, b) in enumerate(zip(starts[:-1], starts[1:])):  # one episode per reset
            if b - a < 2:
                continue
            episode = {"frames": downsample(frames[a:b]), "actions": actions[a + 1:b].astype(np.int64),
                       "rewards": rec.arrays["reward"][a + 1:b].astype(np.float32)}
            save_episode(out / "train" / f"recorded-{path.stem}-{n}.npz", episode, "recorded", n)
            written["steps"] += b - a - 1
        written["recordings"] += 1
    if not written["recordings"]:
        raise UserError(f"no real-engine Skiing recordings in {folder}: record some with "
                        "`neuralplay play skiing --engine real --record`")
    return written
