"""Fit the skier-state tables (`neuralplay.runtime.skier_state`) from ALE replays of collected
episodes: `neuralplay train skier-state --data DATA --out FOLDER`.

Each training episode is replayed in ALE a console frame at a time from the seed in its file
name (each key held for the 4 frames of a step), reading the RAM before every frame. Each
byte's change is tabled by two or three sources (`FACTORED`), its most common value for
each value of them; the tables are then laid out dense over every value of their sources
(a speed never seen takes the nearest seen with the same other sources), beside the slope's
downhill motion, what each of the skier's sprites shows and the rows the skier is drawn in.
"""
from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from neuralplay.errors import UserError
from neuralplay.games.skiing import SKIER, downsample, make_env, to_palette
from neuralplay.runtime.skier_state import FRAMES_PER_STEP, STATE_BYTES, SUBPIXELS, TABLES_FILE, SkierTables, sprite
from neuralplay.training.skiing_data import load_episode
from neuralplay.training.skiing_dynamics_eval import seed_of

SPEED, HEADING, B19, B20, TIMER = STATE_BYTES
X, SUBPIXEL = 25, 99  # the skier's column and its signed sub-pixel byte
SCROLL_BYTES, DOWNHILL_SUBPIXEL = slice(86, 94), 100  # the objects' rows; the slope's sub-pixel byte
KEY = "key"  # the key held, as a source of a table's key
TURNED = "heading after"  # the heading this frame turns to, as a source
MOVE = "move"  # the sub-pixel move, as a table's target
# What each target is looked up by: the turn timer and the heading by the heading, the
# timer and the key; speed, 19 and 20 by themselves and the heading they turn to this
# frame; the move by speed and RAM[19] (the sources that measured best in tools/skier_ram.py).
FACTORED = {HEADING: (HEADING, TIMER, KEY), TIMER: (HEADING, TIMER, KEY), SPEED: (SPEED, TURNED),
            B19: (TURNED, B19), B20: (TURNED, B20), MOVE: (SPEED, B19)}


def record(env, actions: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The actions played on a frameskip-1 env, each held for a step: the RAM before each
    console frame and after the last (4 * len(actions) + 1 rows), and the key held in each
    (0 after the last)."""
    ale, rams, keys = env.unwrapped.ale, [], []
    for key in actions:
        for _ in range(FRAMES_PER_STEP):
            rams.append(ale.getRAM().astype(np.int64))
            keys.append(key)
            env.step(key)
    rams.append(ale.getRAM().astype(np.int64))
    keys.append(0)
    return np.array(rams), np.array(keys)


def replay(path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """A collected episode replayed in ALE a console frame at a time: the RAM before each
    frame (and after the last), the key held in it, and the episode."""
    episode, seed = load_episode(path), seed_of(path)
    env = make_env(frameskip=1)
    env.reset(seed=seed)
    rams, keys = record(env, [int(a) for a in episode["actions"]])
    last = downsample(to_palette(env.unwrapped.ale.getScreenRGB()))
    env.close()
    if not np.array_equal(last, episode["frames"][-1]):
        raise UserError(f"{path.name} does not replay in ALE from seed {seed}: collect it again with "
                        "`neuralplay collect skiing`")
    return rams, keys, episode


def position(ram: np.ndarray) -> np.ndarray:
    """The skier's column in 1/32 px: RAM[25] and its signed sub-pixel byte."""
    return ram[..., X] * SUBPIXELS + (ram[..., SUBPIXEL] + 128) % 256 - 128


def lookup(sources: tuple, ram: np.ndarray, key: int, turned: int | None = None) -> tuple:
    """The values of `sources` in a frame: RAM bytes, the key, and the heading it turns to."""
    return tuple(key if b == KEY else turned if b == TURNED else int(ram[b]) for b in sources)


def changes(rams: np.ndarray) -> dict:
    """Each target's change from one console frame to the next."""
    out = {b: np.diff(rams[:, b]) for b in STATE_BYTES}
    out[MOVE] = np.diff(position(rams))
    return out


RANGED = (SPEED, B19, B20)  # bytes that run over a wide range, and whose changes vary slowly along it


class Table:
    """A target's most common change for each value of its sources. A value never seen takes
    the entry of the nearest value seen of the table's ranged source (the first of `RANGED`
    among its sources: speed runs from 0 to 224, 19 and 20 over most of 0-255), the other
    sources the same. Without it a state read a little off (19 and 20 are not drawn) steps
    into a value the replays never reach, and stops changing there."""

    def __init__(self, sources: tuple, counts: dict):
        self.sources = sources
        self.exact = {k: c.most_common(1)[0][0] for k, c in counts.items()}
        self.by_rest = {}
        ranged = [s for s in RANGED if s in sources]
        self.ranged = sources.index(ranged[0]) if ranged else None
        if self.ranged is not None:
            at = self.ranged
            rows = defaultdict(list)
            for k, change in sorted(self.exact.items(), key=lambda kv: kv[0][at]):
                rows[k[:at] + k[at + 1:]].append((k[at], change))
            self.by_rest = {rest: (np.array([v for v, _ in r]), [c for _, c in r]) for rest, r in rows.items()}

    def get(self, ram: np.ndarray, key: int, turned: int | None = None) -> int | None:
        k = lookup(self.sources, ram, key, turned)
        if k in self.exact:
            return self.exact[k]
        if self.ranged is None:
            return None
        at = self.ranged
        row = self.by_rest.get(k[:at] + k[at + 1:])
        return None if row is None else row[1][int(np.abs(row[0] - k[at]).argmin())]

    def dense(self) -> np.ndarray:
        """The change for every value of the sources (bytes 0-255, the key 0-2), 0 where unseen."""
        shape = tuple(3 if s == KEY else 256 for s in self.sources)
        out, ram = np.zeros(shape, np.int64), np.zeros(128, np.int64)
        for index in np.ndindex(*shape):
            values = dict(zip(self.sources, index))
            for source, value in values.items():
                if isinstance(source, int):
                    ram[source] = value
            out[index] = self.get(ram, values.get(KEY, 0), values.get(TURNED)) or 0
        return out


def fit(model: dict, episodes: list) -> dict:
    """For each target, its Table; and the walls: the columns the skier keeps within (it
    stops at the screen's edges), in 1/32 px."""
    counts = {target: defaultdict(Counter) for target in model}
    for rams, keys in episodes:
        change = changes(rams)
        for i in range(len(keys) - 1):
            for target, sources in model.items():
                counts[target][lookup(sources, rams[i], keys[i], rams[i + 1, HEADING])][change[target][i]] += 1
    tables = {target: Table(model[target], c) for target, c in counts.items()}
    low, high = min(int(r[:, X].min()) for r, _ in episodes), max(int(r[:, X].max()) for r, _ in episodes)
    return {**tables, "walls": (low * SUBPIXELS, high * SUBPIXELS + SUBPIXELS - 1)}


MOST_ROWS_A_FRAME = 16  # more than the slope moves in a console frame (native rows)


def rows_scrolled(objects: np.ndarray) -> np.ndarray:
    """The native rows the slope moved up each console frame, from the objects' rows (T, 8)
    before each: their most common change (mod 256). Where an object has left the top, the
    others move down a place in the list, so then they are compared a place apart; -1 where
    neither explains the frame (more than one object left, or one came in at the head)."""
    same = np.diff(objects, axis=0) % 256
    moved_down = (objects[1:, :-1] - objects[:-1, 1:]) % 256
    rows = np.array([np.bincount(r).argmax() for r in same])
    left = rows >= MOST_ROWS_A_FRAME
    rows[left] = [np.bincount(r).argmax() for r in moved_down[left]]
    return np.where(rows < MOST_ROWS_A_FRAME, rows, -1)


def downhill_table(rams_list: list[np.ndarray]) -> np.ndarray:
    """The slope's motion a frame in 1/32 px: the objects' rows moved times 32 plus the
    downhill sub-pixel byte's change, most common by speed and RAM[20]."""
    counts = defaultdict(Counter)
    for rams in rams_list:
        rows = rows_scrolled(rams[:, SCROLL_BYTES])
        motion = SUBPIXELS * rows + np.diff(rams[:, DOWNHILL_SUBPIXEL])
        for i in np.nonzero(rows >= 0)[0]:
            counts[(rams[i, SPEED], rams[i, B20])][int(motion[i])] += 1
    out = np.zeros((256, 256), np.int64)
    for (speed, b20), c in counts.items():
        out[speed, b20] = c.most_common(1)[0][0]
    return out


def sprites_shown(replays: list) -> dict:
    """For each sprite the episodes' frames show, the headings and column offsets of the
    RAM it shows (a frame t shows console frame 4t - 1's; the reset screen none)."""
    headings, offsets = defaultdict(set), defaultdict(set)
    for rams, _, episode in replays:
        for t in range(1, len(episode["frames"])):
            key, left = sprite(episode["frames"][t])
            if key is not None:
                shown = rams[FRAMES_PER_STEP * t - 1]
                headings[key].add(int(shown[HEADING]))
                offsets[key].add(int(position(shown)) // SUBPIXELS - 2 * left)
    return {k: (np.array(sorted(headings[k])), np.array(sorted(offsets[k]))) for k in headings}


def skier_rows(replays: list) -> tuple[int, int]:
    """The first and last row the episodes' frames draw the skier in."""
    drawn = np.concatenate([np.nonzero((episode["frames"] == SKIER).any(axis=(0, 2)))[0] for _, _, episode in replays])
    return int(drawn.min()), int(drawn.max())


def fit_tables(replays: list) -> SkierTables:
    """The skier-state tables of replayed episodes ((rams, keys, episode) each)."""
    tables = fit(FACTORED, [(rams, keys) for rams, keys, _ in replays])
    sprites = sprites_shown(replays)
    if not sprites:
        raise UserError("no frame of the training episodes shows the skier: collect again with "
                        "`neuralplay collect skiing`")
    dense = {target: tables[target].dense() for target in FACTORED}
    return SkierTables(turn=dense[HEADING], timer=dense[TIMER], speed=dense[SPEED], b19=dense[B19], b20=dense[B20],
                       move=dense[MOVE], downhill=downhill_table([rams for rams, _, _ in replays]),
                       walls=tables["walls"], sprites=sprites, rows=skier_rows(replays),
                       states=np.unique(np.concatenate([rams[:, list(STATE_BYTES)] for rams, _, _ in replays]), axis=0))


def train_skier_state(data: Path, out: Path) -> Path:
    """Fit the tables on DATA/train's episodes and write them to OUT/skier_state.npz (with a
    JSON of what they were fit on beside); the path written."""
    paths = sorted((Path(data) / "train").glob("*.npz"))
    if not paths:
        raise UserError(f"no training Skiing episodes in {Path(data) / 'train'}: run `neuralplay collect skiing` first")
    started = time.time()
    replays = [replay(p) for p in paths]
    tables = fit_tables(replays)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = tables.save(out / TABLES_FILE)
    meta = {"game": "skiing", "kind": "skier-state", "data": str(data), "episodes": [p.name for p in paths],
            "console_frames": int(sum(len(keys) - 1 for _, keys, _ in replays)), "states": int(len(tables.states)),
            "sprites": len(tables.sprites), "skier_rows": list(tables.rows), "walls": list(tables.walls),
            "seconds": round(time.time() - started, 1)}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return path
