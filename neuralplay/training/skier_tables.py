"""Fit the skier-state tables (`neuralplay.runtime.skier_state`) from ALE replays of collected
episodes: `neuralplay train skier-state --data DATA [--data DATA2 ...] --out FOLDER`.

Each training episode is replayed in ALE a console frame at a time from the seed in its file
name (each key held for the 4 frames of a step), reading the RAM before every frame. Each
byte's change is tabled by two or three sources (`FACTORED`), its most common value for
each value of them; the tables are then laid out dense over every value of their sources
(a speed never seen takes the nearest seen with the same other sources), beside the slope's
downhill motion, what each of the skier's sprites shows, the rows the skier is drawn in, and
the course (`neuralplay.runtime.skiing_course`): each frame's slope placed as far down as the
objects' rows in RAM have moved, each pixel the colour most frames show it.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from neuralplay.errors import UserError
from neuralplay.games.skiing import HUD_ROWS, PALETTE, SKIER, SLOPE_END, downsample, make_env, to_palette
from neuralplay.runtime.skier_state import (FALLEN_FROM, FRAMES_PER_STEP, STATE_BYTES, SUBPIXELS, TABLES_FILE,
                                            SkierTables, sprite)
from neuralplay.runtime.skiing_course import GATE_FLAG, KIND, LEFT, MOGUL, TOP, TREE, UNSEEN, objects_of
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


def record(env, actions: list[int], slopes: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The actions played on a frameskip-1 env, each held for a step: the RAM before each
    console frame and after the last (4 * len(actions) + 1 rows), and the key held in each
    (0 after the last). With `slopes`, the native slope of the screen before each step and
    after the last (the stored frames', at full resolution) is appended to it."""
    ale, rams, keys = env.unwrapped.ale, [], []
    for key in actions:
        if slopes is not None:
            slopes.append(native_slope(ale))
        for _ in range(FRAMES_PER_STEP):
            rams.append(ale.getRAM().astype(np.int64))
            keys.append(key)
            env.step(key)
    if slopes is not None:
        slopes.append(native_slope(ale))
    rams.append(ale.getRAM().astype(np.int64))
    keys.append(0)
    return np.array(rams), np.array(keys)


def native_slope(ale) -> np.ndarray:
    """The slope rows (below the HUD, above the logo) of ALE's screen, native palette."""
    return to_palette(ale.getScreenRGB()[2 * HUD_ROWS:2 * SLOPE_END])


def replay(path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """A collected episode replayed in ALE a console frame at a time: the RAM before each
    frame (and after the last), the key held in it, and the episode, with its frames'
    slopes at full resolution beside them (`slopes`)."""
    episode, seed = load_episode(path), seed_of(path)
    env = make_env(frameskip=1)
    env.reset(seed=seed)
    slopes = []
    rams, keys = record(env, [int(a) for a in episode["actions"]], slopes)
    last = downsample(to_palette(env.unwrapped.ale.getScreenRGB()))
    env.close()
    if not np.array_equal(last, episode["frames"][-1]):
        raise UserError(f"{path.name} does not replay in ALE from seed {seed}: collect it again with "
                        "`neuralplay collect skiing`")
    return rams, keys, {**episode, "slopes": np.array(slopes)}


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
    downhill sub-pixel byte's change, most common by speed and RAM[20]; a pair the replays
    never show takes the motion of the nearest speed they show with the same RAM[20]
    (`nearest_speed`)."""
    counts = defaultdict(Counter)
    for rams in rams_list:
        rows = rows_scrolled(rams[:, SCROLL_BYTES])
        motion = SUBPIXELS * rows + np.diff(rams[:, DOWNHILL_SUBPIXEL])
        for i in np.nonzero(rows >= 0)[0]:
            counts[(rams[i, SPEED], rams[i, B20])][int(motion[i])] += 1
    out, seen = np.zeros((256, 256), np.int64), np.zeros((256, 256), bool)
    for (speed, b20), c in counts.items():
        out[speed, b20], seen[speed, b20] = c.most_common(1)[0][0], True
    return nearest_speed(out, seen)


def nearest_speed(table: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """A (speed, RAM[20]) table with each pair not `seen` given the value of the nearest
    speed seen with the same RAM[20] (the lower where two are as near; left where none is).
    Unfilled, the pairs held-out play reaches and training never did (a few percent of
    its frames) move the slope not at all, and the state's slope falls behind ALE's by
    tens of rows over an episode."""
    out, speeds = table.copy(), np.arange(table.shape[0])
    for b20 in range(table.shape[1]):
        shown = np.nonzero(seen[:, b20])[0]
        if len(shown):
            nearest = shown[np.abs(speeds[:, None] - shown[None, :]).argmin(axis=1)]
            out[:, b20] = table[nearest, b20]
    return out


# How far (px at 105x80) from ALE's skier column (RAM) a frame's skier-coloured pixels may lie
# for the frame to show the skier alone: the sprites reach 4.5 px in the training frames;
# the course's last gate has flags of the skier's colour, 59 px away at most.
SKIER_ALONE_PX = 6


def skier_alone(frame: np.ndarray, shown: np.ndarray) -> bool:
    """Whether the skier-coloured pixels of a frame (105x80) are the skier's only: all within
    SKIER_ALONE_PX of the column of the RAM it shows (none: False)."""
    xs = np.nonzero(frame == SKIER)[1]
    return bool(len(xs)) and bool(np.abs(xs - position(shown) / SUBPIXELS / 2).max() <= SKIER_ALONE_PX)


def frames_of_the_skier_alone(replays: list) -> list[tuple[np.ndarray, np.ndarray]]:
    """(frame, the RAM it shows) for each frame of the episodes that shows the skier alone
    (`skier_alone`; a frame t shows console frame 4t - 1's RAM; the reset screen none)."""
    alone = []
    for rams, _, episode in replays:
        for t in range(1, len(episode["frames"])):
            frame, shown = episode["frames"][t], rams[FRAMES_PER_STEP * t - 1]
            if skier_alone(frame, shown):
                alone.append((frame, shown))
    return alone


def sprites_shown(alone: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """For each sprite the frames that show the skier alone (`frames_of_the_skier_alone`)
    show, the headings and column offsets of the RAM it shows."""
    headings, offsets = defaultdict(set), defaultdict(set)
    for frame, shown in alone:
        key, left = sprite(frame)
        headings[key].add(int(shown[HEADING]))
        offsets[key].add(int(position(shown)) // SUBPIXELS - 2 * left)
    return {k: (np.array(sorted(headings[k])), np.array(sorted(offsets[k]))) for k in headings}


def skier_rows(alone: list[tuple[np.ndarray, np.ndarray]]) -> tuple[int, int]:
    """The first and last row the frames that show the skier alone draw it in."""
    drawn = np.nonzero(np.any([(frame == SKIER).any(axis=1) for frame, _ in alone], axis=0))[0]
    return int(drawn.min()), int(drawn.max())


def slope_rows(rams: np.ndarray) -> np.ndarray:
    """How many native rows the slope has moved up by each console frame's RAM (the
    objects' rows in RAM moved, summed from the first)."""
    return np.concatenate([[0], np.cumsum(np.maximum(rows_scrolled(rams[:, SCROLL_BYTES]), 0))])


def slope_offsets(rams: np.ndarray) -> np.ndarray:
    """How many native rows down the course each stored frame's slope is (frame t shows the
    screen drawn in console frame 4t - 1, whose objects are where the RAM before it has them)."""
    drawn = np.concatenate([[0], slope_rows(rams)])  # the screen before console frame i: the RAM of i - 1
    return drawn[::FRAMES_PER_STEP][:(len(rams) - 1) // FRAMES_PER_STEP + 1]


def course_of(replays: list) -> np.ndarray:
    """The course the episodes' frames show (`neuralplay.runtime.skiing_course`): each pixel
    of the slope the colour most frames show at its place down the course, the skier's left
    out; UNSEEN where none shows one."""
    placed = [(slope_offsets(rams), episode["slopes"]) for rams, _, episode in replays]
    height, width = placed[0][1].shape[1:]
    length = max(int(offsets[:len(slopes)].max()) for offsets, slopes in placed) + height
    colours = len(PALETTE)
    votes = np.zeros(length * width * colours, np.int64)
    for offsets, slopes in placed:
        t, y, x = np.nonzero(slopes != SKIER)
        rows = offsets[t] + y
        votes += np.bincount((rows * width + x) * colours + slopes[t, y, x], minlength=len(votes))
    votes = votes.reshape(length, width, colours)
    return np.where(votes.any(axis=2), votes.argmax(axis=2), UNSEEN).astype(np.uint8)


FALL_ROWS = range(2 * HUD_ROWS, 2 * HUD_ROWS + 40)  # the screen rows (native) a fall's row is looked for in
FALL_SPANS = range(-12, 15)  # the skier's columns less the object's left column a fall's span is looked for in
FALSE_FALL_COST = 3  # a rule's score: the falls it tells less this many times the falls it tells wrongly


def crossings(replays: list, objects: np.ndarray, kind: int, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Each console frame a standing skier's objects of `kind` move up (`lag` frames before):
    (frame, the object's screen row before, its row after, the skier's column less the
    object's left column), with the frames numbered across the replays; and whether the
    skier fell in each frame."""
    events, fell, first = [], [], 0
    of_kind = objects[objects[:, KIND] == kind]
    for rams, _, _ in replays:
        rows, heading = slope_rows(rams), rams[:, HEADING]
        frames = np.arange(lag + 1, len(rams) - 1)
        frames = frames[heading[frames] < FALLEN_FROM]
        before = of_kind[None, :, TOP] - rows[frames - lag - 1, None] + 2 * HUD_ROWS
        after = of_kind[None, :, TOP] - rows[frames - lag, None] + 2 * HUD_ROWS
        span = position(rams[frames])[:, None] // SUBPIXELS - of_kind[None, :, LEFT]
        near = (after < before) & (after >= FALL_ROWS[0]) & (before <= FALL_ROWS[-1] + 1) & (np.abs(span) < 30)
        f, o = np.nonzero(near)
        events.append(np.column_stack([first + f, before[f, o], after[f, o], span[f, o]]))
        fell.append(heading[frames + 1] >= FALLEN_FROM)
        first += len(frames)
    return np.concatenate(events), np.concatenate(fell)


def fall_rule(replays: list, objects: np.ndarray, kind: int) -> tuple[int, int, int, int, int] | None:
    """The best rule of the form "the skier falls where an object of `kind` moves up past
    screen row R (`lag` console frames before), the skier's column less the object's left
    column within [low, high]" over lags 0 and 1, by score; None where none scores above 0."""
    best = None
    for lag in (0, 1):
        events, fell = crossings(replays, objects, kind, lag)
        for row in FALL_ROWS:
            past = events[(events[:, 2] <= row) & (events[:, 1] > row)]
            for low in FALL_SPANS:
                for high in FALL_SPANS[FALL_SPANS.index(low):]:
                    frames = np.unique(past[(past[:, 3] >= low) & (past[:, 3] <= high), 0])
                    told = int(fell[frames].sum())
                    score = told - FALSE_FALL_COST * (len(frames) - told)
                    if score > 0 and (best is None or (score, high - low) > best[:2]):
                        best = (score, high - low, (kind, lag, row, low, high))
    return None if best is None else best[2]


def fall_rules(replays: list, objects: np.ndarray) -> np.ndarray:
    """The falls' rules (R, 5: kind, lag, row, low, high; `fall_rule`), one for each kind of
    object that scores."""
    found = [fall_rule(replays, objects, kind) for kind in (TREE, GATE_FLAG, MOGUL)]
    return np.array([rule for rule in found if rule is not None], np.int64).reshape(-1, 5)


def fallen_states(replays: list) -> np.ndarray:
    """What a fall sets, by the heading before it (16, 3: speed, heading, turn timer): the
    most common of each in the frames the replays' skier falls in (0 where it never fell
    from that heading: then the most common of any heading)."""
    seen = defaultdict(Counter)
    for rams, _, _ in replays:
        heading = rams[:, HEADING]
        for i in np.nonzero((heading[1:] >= FALLEN_FROM) & (heading[:-1] < FALLEN_FROM))[0]:
            seen[int(heading[i])][(int(rams[i + 1, SPEED]), int(rams[i + 1, HEADING]), int(rams[i + 1, TIMER]))] += 1
    every = sum(seen.values(), Counter())
    anyway = every.most_common(1)[0][0] if every else (0, FALLEN_FROM, 0)
    return np.array([seen[h].most_common(1)[0][0] if seen[h] else anyway for h in range(FALLEN_FROM)], np.int64)


def fit_tables(replays: list) -> SkierTables:
    """The skier-state tables of replayed episodes ((rams, keys, episode) each)."""
    tables = fit(FACTORED, [(rams, keys) for rams, keys, _ in replays])
    alone = frames_of_the_skier_alone(replays)  # read once: the sprites and the skier's rows
    sprites = sprites_shown(alone)
    if not sprites:
        raise UserError("no frame of the training episodes shows the skier: collect again with "
                        "`neuralplay collect skiing`")
    dense = {target: tables[target].dense() for target in FACTORED}
    course = course_of(replays)
    objects = objects_of(course)
    return SkierTables(turn=dense[HEADING], timer=dense[TIMER], speed=dense[SPEED], b19=dense[B19], b20=dense[B20],
                       move=dense[MOVE], downhill=downhill_table([rams for rams, _, _ in replays]),
                       walls=tables["walls"], sprites=sprites, rows=skier_rows(alone), course=course,
                       objects=objects, falls=fall_rules(replays, objects), fallen=fallen_states(replays),
                       states=np.unique(np.concatenate([rams[:, list(STATE_BYTES)] for rams, _, _ in replays]), axis=0))


def training_episodes(folders: list[Path]) -> list[Path]:
    """The training episodes of every data folder (FOLDER/train/*.npz), each once: the players
    that do not steer (held-random) play the same episodes whatever the steering, so two
    collections hold the same files."""
    seen, paths = set(), []
    for folder in folders:
        found = sorted((Path(folder) / "train").glob("*.npz"))
        if not found:
            raise UserError(f"no training Skiing episodes in {Path(folder) / 'train'}: run `neuralplay collect "
                            "skiing` first")
        for path in found:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                paths.append(path)
    return paths


def train_skier_state(data: list[Path], out: Path) -> Path:
    """Fit the tables on the training episodes of the DATA folders and write them to
    OUT/skier_state.npz (with a JSON of what they were fit on beside); the path written."""
    paths = training_episodes(data)
    started = time.time()
    replays = [replay(p) for p in paths]
    tables = fit_tables(replays)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = tables.save(out / TABLES_FILE)
    meta = {"game": "skiing", "kind": "skier-state", "data": [str(d) for d in data],
            "episodes": [f"{p.parent.parent.name}/{p.name}" for p in paths],
            "console_frames": int(sum(len(keys) - 1 for _, keys, _ in replays)), "states": int(len(tables.states)),
            "sprites": len(tables.sprites), "skier_rows": list(tables.rows), "walls": list(tables.walls),
            "course_rows": int(len(tables.course)), "course_objects": int(len(tables.objects)),
            "fall_rules": [dict(zip(("kind", "lag", "row", "low", "high"), map(int, r))) for r in tables.falls],
            "seconds": round(time.time() - started, 1)}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return path
