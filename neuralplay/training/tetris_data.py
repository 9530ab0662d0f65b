"""Tetris transitions for training and testing: who plays, how the sets are cut, the files.

A transition is (board x, event, next board y, spawned piece or -1). Boards are the Markov
observation of the engine, stored bit-packed. Three sets are written: `train`, `test_train`
(same policies, other seeds) and `test_play` (the real-play distribution: the heuristic
player pressing keys at human speed while gravity ticks, other seeds).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from neuralplay.errors import UserError
from neuralplay.games.tetris import (
    COLS, PIECES, ROWS, SPAWN_SHAPES, Event, TetrisGame, apply_event, drop_distance, fits,
    gravity_interval_s, observation, shift, spawn_blocked, split_observation,
)
from neuralplay.games.tetris_agent import HeuristicAgent, best_placement, piece_of, placements

BOARD_SHAPE = (2, ROWS, COLS)
POLICIES = ("player", "player-soft", "random", "mix")
RANDOM_EVENT_WEIGHTS = np.array([0.3, 0.2, 0.2, 0.2, 0.07, 0.03])
FPS = 60


@dataclass
class Transitions:
    x: np.ndarray  # (N, 2, ROWS, COLS) uint8
    event: np.ndarray  # (N,) int64
    y: np.ndarray  # (N, 2, ROWS, COLS) uint8
    spawn: np.ndarray  # (N,) int64, index into PIECES or -1

    def __len__(self) -> int:
        return len(self.event)

    def subset(self, index: np.ndarray) -> "Transitions":
        return Transitions(self.x[index], self.event[index], self.y[index], self.spawn[index])

    @staticmethod
    def concat(parts: list["Transitions"]) -> "Transitions":
        return Transitions(*(np.concatenate([getattr(p, f) for p in parts])
                             for f in ("x", "event", "y", "spawn")))


class TimedPlayer:
    """Turns an agent into the event stream of a person: keys every few frames, gravity
    ticking at the level's speed, as the app produces them."""

    def __init__(self, agent: HeuristicAgent, rng: np.random.Generator, key_frames=(4, 16)):
        self.agent, self.rng, self.key_frames = agent, rng, key_frames
        self.frame = 0
        self.next_key = int(rng.integers(*key_frames))
        self.next_gravity = 0

    def next_event(self, obs: np.ndarray, level: int = 1) -> Event:
        while True:
            self.frame += 1
            if self.frame >= self.next_gravity:
                self.next_gravity = self.frame + round(gravity_interval_s(level) * FPS)
                return Event.NONE
            if self.frame >= self.next_key:
                self.next_key = self.frame + int(self.rng.integers(*self.key_frames))
                return self.agent.act(obs)


def make_policy(name: str, seed: int):
    """A callable (observation, level) -> event for one of POLICIES."""
    rng = np.random.default_rng(seed)
    if name == "random":
        return lambda obs, level=1: Event(int(rng.choice(len(Event), p=RANDOM_EVENT_WEIGHTS)))
    agent = HeuristicAgent(drop="soft" if name == "player-soft" else "hard",
                           epsilon=0.25 if name == "mix" else 0.0, seed=seed)
    return TimedPlayer(agent, rng).next_event


def simulate(policy: str, steps: int, seed: int, max_episode: int = 4000,
             progress=None) -> Transitions:
    """Play `steps` transitions with one policy; game-over steps are not transitions."""
    game = TetrisGame(seed=seed)
    act = make_policy(policy, seed)
    x = np.empty((steps, *BOARD_SHAPE), np.uint8)
    y = np.empty_like(x)
    event = np.empty(steps, np.int64)
    spawn = np.full(steps, -1, np.int64)
    n = episode_steps = episodes = 0
    while n < steps:
        obs = game.observation()
        e = act(obs, game.level)
        result = game.step(e)
        episode_steps += 1
        if result.game_over or episode_steps >= max_episode:
            episodes += 1
            game.reset(seed * 1000 + episodes)
            act = make_policy(policy, seed * 1000 + episodes)
            episode_steps = 0
            if result.game_over:
                continue
        x[n], event[n], y[n] = obs, e, game.observation()
        if result.spawned:
            spawn[n] = PIECES.index(result.spawned)
        n += 1
        if progress is not None:
            progress.update(1)
    return Transitions(x, event, y, spawn)


def is_spawn(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """DESIGN.md's spawn: row 0 of x empty and row 0 of the next board has a filled cell."""
    fx = filled(x)
    fy = filled(y)
    return ~fx[:, 0].any(axis=1) & fy[:, 0].any(axis=1)


def filled(boards: np.ndarray) -> np.ndarray:
    """(N, 2, R, C) observation -> (N, R, C) bool: a cell is filled if settled or falling."""
    return boards.astype(bool).any(axis=1)


def rebalance(data: Transitions, spawn_fraction: float, seed: int) -> Transitions:
    """Resample so that spawns make up `spawn_fraction` of the set (size kept)."""
    rng = np.random.default_rng(seed)
    spawn = is_spawn(data.x, data.y)
    n_spawn = int(round(len(data) * spawn_fraction))
    spawn_idx = rng.choice(np.flatnonzero(spawn), n_spawn, replace=True)
    fall_idx = rng.choice(np.flatnonzero(~spawn), len(data) - n_spawn, replace=True)
    return data.subset(rng.permutation(np.concatenate([spawn_idx, fall_idx])))


def landings(data: Transitions, n: int, seed: int) -> Transitions:
    """`n` transitions of pieces reaching the stack, the rarest and hardest steps in play.

    Each takes the falling piece of a board in `data`, moves it straight down (a path the
    piece can always take) and applies, by the engine's rules, gravity or a soft drop where it
    rests (it locks, often clearing lines) or a hard drop from any row on the way.
    """
    rng = np.random.default_rng(seed)
    falling = np.flatnonzero(data.x[:, 1].any(axis=(1, 2)))
    if n <= 0 or len(falling) == 0:
        return data.subset(falling[:0])
    x = np.empty((n, *BOARD_SHAPE), np.uint8)
    y = np.empty_like(x)
    events = rng.choice([Event.NONE, Event.SOFT_DROP, Event.HARD_DROP], size=n)
    for i, k in enumerate(rng.choice(falling, size=n)):
        settled, cells = split_observation(data.x[k])
        d = drop_distance(settled, cells)
        rows = d if events[i] != Event.HARD_DROP else int(rng.integers(0, d + 1))
        cells = shift(cells, rows, 0)
        move = apply_event(settled, cells, Event(events[i]))
        x[i], y[i] = observation(settled, cells), observation(move.settled, move.cells)
    return Transitions(x, events.astype(np.int64), y, np.full(n, -1, np.int64))


def hard_drops(data: Transitions, n: int, seed: int) -> Transitions:
    """`n` hard drops of new pieces onto the stacks of `data`, where play's hard drops err most.

    Each takes a board's settled stack, spawns a random piece, turns and slides it to a
    placement it can reach (half the time the heuristic player's choice, which fills wells
    and completes rows; else any placement), lowers it by a random number of rows on its way
    down, and hard-drops it by the engine's rules. A stack meets many pieces and columns
    here, where in play it meets only the one piece that fell on it.
    """
    rng = np.random.default_rng(seed)
    x = np.empty((n, *BOARD_SHAPE), np.uint8)
    y = np.empty_like(x)
    made = tries = 0
    while made < n:
        tries += 1
        if tries > 100 * n + 1000:  # a set of stacks no new piece fits on (game-over boards)
            raise UserError("no new piece fits on the collected stacks: collect more data")
        settled = data.x[rng.integers(len(data))][0].astype(bool)
        spawned = SPAWN_SHAPES[PIECES[rng.integers(len(PIECES))]]
        options = placements(settled, spawned) if fits(settled, spawned) else []
        if not options:
            continue
        chosen = best_placement(options) if rng.random() < 0.5 else options[rng.integers(len(options))]
        cells = shift(chosen.cells, int(rng.integers(0, drop_distance(settled, chosen.cells) + 1)), 0)
        move = apply_event(settled, cells, Event.HARD_DROP)
        x[made], y[made] = observation(settled, cells), observation(move.settled, move.cells)
        made += 1
    return Transitions(x, np.full(n, int(Event.HARD_DROP), np.int64), y, np.full(n, -1, np.int64))


def save(data: Transitions, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, x=np.packbits(data.x, axis=-1), y=np.packbits(data.y, axis=-1),
                        event=data.event, spawn=data.spawn, format=np.array("tetris-transitions-v1"))
    tmp.replace(path)


def load(path: Path) -> Transitions:
    if not path.exists():
        raise UserError(f"no Tetris data at {path}: run `neuralplay collect tetris` first")
    try:
        with np.load(path, allow_pickle=False) as f:
            if str(f["format"]) != "tetris-transitions-v1":
                raise ValueError("wrong format")
            unpack = lambda a: np.unpackbits(a, axis=-1, count=COLS)
            return Transitions(unpack(f["x"]), f["event"], unpack(f["y"]), f["spawn"])
    except (OSError, KeyError, ValueError) as err:
        raise UserError(f"{path} is not a Tetris data set ({err}): collect it again with "
                        "`neuralplay collect tetris`") from None


@dataclass
class CollectConfig:
    out: str
    train_steps: int = 400_000
    test_steps: int = 40_000
    seed: int = 0
    spawn_fraction: float | None = None  # e.g. 0.2 for the seed project's 80/20
    landing_fraction: float = 0.1  # extra train transitions of pieces landing (see landings)
    hard_drop_fraction: float = 0.0  # extra train hard drops of new pieces onto the stacks (see hard_drops)


def summarize(data: Transitions) -> dict:
    spawn = is_spawn(data.x, data.y)
    return {
        "transitions": len(data),
        "spawn_fraction": round(float(spawn.mean()), 4),
        "events": {n: int((data.event == i).sum()) for i, n in enumerate(e.name.lower() for e in Event)},
        "spawned_pieces": {p: int((data.spawn == i).sum()) for i, p in enumerate(PIECES)},
    }


def collect(cfg: CollectConfig, show_progress: bool = True) -> dict:
    from tqdm import tqdm

    for option, value in (("--landing-fraction", cfg.landing_fraction),
                          ("--hard-drop-fraction", cfg.hard_drop_fraction)):
        if value < 0:
            raise UserError(f"{option} {value} is negative: give a share of the train set, e.g. 0.1")
    out = Path(cfg.out)
    per_policy = cfg.train_steps // len(POLICIES)
    test_per_policy = cfg.test_steps // len(POLICIES)
    plan = [("train", p, per_policy, cfg.seed * 100 + i) for i, p in enumerate(POLICIES)]
    plan += [("test_train", p, test_per_policy, cfg.seed * 100 + 50 + i) for i, p in enumerate(POLICIES)]
    plan += [("test_play", "player", cfg.test_steps // 2, cfg.seed * 100 + 90),
             ("test_play", "player-soft", cfg.test_steps // 2, cfg.seed * 100 + 91)]
    total = sum(n for _, _, n, _ in plan)
    parts: dict[str, list[Transitions]] = {}
    with tqdm(total=total, desc="collect tetris", unit="step", disable=not show_progress) as bar:
        for name, policy, n, seed in plan:
            parts.setdefault(name, []).append(simulate(policy, n, seed, progress=bar))
    summary = {"config": asdict(cfg), "sets": {}}
    for name, chunks in parts.items():
        data = Transitions.concat(chunks)
        data = data.subset(np.random.default_rng(cfg.seed).permutation(len(data)))
        if name == "train" and cfg.spawn_fraction is not None:
            data = rebalance(data, cfg.spawn_fraction, cfg.seed)
        if name == "train" and cfg.landing_fraction > 0:
            extra = landings(data, int(len(data) * cfg.landing_fraction), cfg.seed)
            data = Transitions.concat([data, extra])
            data = data.subset(np.random.default_rng(cfg.seed + 1).permutation(len(data)))
        if name == "train" and cfg.hard_drop_fraction > 0:
            extra = hard_drops(data, int(len(data) * cfg.hard_drop_fraction), cfg.seed + 2)
            data = Transitions.concat([data, extra])
            data = data.subset(np.random.default_rng(cfg.seed + 3).permutation(len(data)))
        save(data, out / f"{name}.npz")
        summary["sets"][name] = summarize(data)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def from_recording(path: Path) -> Transitions | None:
    """The real engine's transitions in one recording (its `real` pane); None if it has none."""
    from neuralplay.recording.format import read

    rec = read(path)
    if rec.header.get("game") != "tetris" or "frame_real" not in rec.arrays:
        return None
    frames, actions = rec.arrays["frame_real"], rec.arrays["action"]
    keep = [i for i in range(1, len(actions)) if actions[i] >= 0 and not spawn_blocked(frames[i])]
    if not keep:
        return None
    idx = np.array(keep)
    spawn = np.full(len(idx), -1, np.int64)
    for j, i in enumerate(keep):
        if not frames[i - 1][1].any() and frames[i][1].any():
            name = piece_of(split_observation(frames[i])[1])
            spawn[j] = PIECES.index(name) if name else -1
    return Transitions(frames[idx - 1], actions[idx].astype(np.int64), frames[idx], spawn)


def collect_recordings(folder: Path, out: Path) -> dict:
    """All real-engine Tetris recordings in a folder -> out/recorded.npz (train reads it too)."""
    from neuralplay.recording.format import SUFFIX

    paths = sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []
    parts = [t for t in (from_recording(p) for p in paths) if t is not None]
    if not parts:
        raise UserError(f"no real-engine Tetris recordings in {folder}: record some with "
                        "`neuralplay play tetris --engine real --record` (or --compare --record)")
    data = Transitions.concat(parts)
    save(data, out / "recorded.npz")
    return {"recordings": len(parts), **summarize(data)}


def load_training(data_dir: Path) -> Transitions:
    """The train set plus recorded human play (recorded.npz), where there is some."""
    names = [n for n in ("train.npz", "recorded.npz") if (data_dir / n).exists()]
    if not names:
        return load(data_dir / "train.npz")  # says how to collect it
    return Transitions.concat([load(data_dir / n) for n in names])
