"""The skier's state as ALE keeps it, read off real frames and carried by the keys; numpy only.

ALE's skier is five RAM bytes (speed 14, heading 15, two bytes 19 and 20 that step as it
turns and gathers speed, the turn timer 98) and a column in 1/32 px (RAM[25] * 32 plus a
signed sub-pixel byte, RAM[99]). `SkierTables` holds small lookup tables of how each byte
changes a console frame (fit from ALE replays by `neuralplay.training.skier_tables`), the
slope's downhill motion a frame, what each sprite of the skier shows (the headings and
column offsets it is drawn with), and the course down the slope (`skiing_course`).
`SkierState.read` keeps the candidate states that agree with every frame of a context (its
sprites, and the slope's scroll over it); `step` moves them on by a key, four console
frames, and `column` is their median.

A stored frame t shows the RAM of console frame 4t - 1, the one before its step's last, so
a step from frame t to t + 1 runs console frames 4t - 1 (under the key that led to frame t)
and 4t to 4t + 2 (under the new key).
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuralplay.errors import UserError
from neuralplay.games.skiing import HUD_ROWS, SKIER, SLOPE_END, SNOW, skier_pixels
from neuralplay.runtime.skiing_course import KIND, LEFT, TOP, locate

STATE_BYTES = (14, 15, 19, 20, 98)  # speed, heading, 19, 20, turn timer
FALLEN_FROM = 16  # headings 0-15 ski; a fall sets one above, until the skier stands again
FALL_NEAR = 64  # native rows from a fall's row within which objects are tried (more than the slope moves in 3 frames)
SPEED, HEADING, B19, B20, TIMER, COLUMN, DOWNHILL = range(7)  # a candidate's fields
FRAMES_PER_STEP = 4
SUBPIXELS = 32  # the column's units a pixel
SCROLL_SHIFTS = range(8)  # rows the slope may move up between two frames (105x80)
SCROLL_ANCHOR = 6  # rows (105x80) of scroll from the frame a scroll is measured from, before a later one is taken
# native rows a candidate's downhill motion stays under the course's over the frames read: the sub-pixel byte's share
COURSE_TOLERANCE = 1
SCROLL_TOLERANCE = 1.5  # rows at 105x80 between the scroll read and a candidate's: the sub-row phase
MAX_CANDIDATES = 2000  # a step moves at most this many (a seeded sample)
STATE_FRAMES = 16  # the frames a reading takes: 15 read (the slope's scroll over them pins the speed), and the one before them for its key
MAX_READ = 200_000  # a context frame keeps at most this many while it is read
TABLES_FILE = "skier_state.npz"
FIX = "make it with `neuralplay train skier-state --data DATA --out FOLDER`"


SpriteKey = tuple[int, int, bytes]


def sprite(frame: np.ndarray) -> tuple[SpriteKey | None, int]:
    """The skier's sprite in a 105x80 palette frame as a key (its mask's shape and bits)
    and its leftmost column; None where the frame shows no skier (`skier_pixels`)."""
    ys, xs = skier_pixels(frame)
    if not len(xs):
        return None, 0
    mask = frame[ys.min():ys.max() + 1, xs.min():xs.max() + 1] == SKIER
    return (mask.shape[0], mask.shape[1], np.packbits(mask).tobytes()), int(xs.min())


def sprite_mask(height: int, width: int, bits: bytes) -> np.ndarray:
    """A sprite key's mask (height, width) bool."""
    return np.unpackbits(np.frombuffer(bits, np.uint8))[:height * width].reshape(height, width).astype(bool)


def moved_up(slope: np.ndarray, rows: int, fill) -> np.ndarray:
    """The slope's rows (R, W) moved up by `rows`, the rows that come in at the bottom `fill`
    (a colour, one for each column, or the rows themselves)."""
    moved = np.empty_like(slope)
    moved[:len(slope) - rows] = slope[rows:]
    moved[len(slope) - rows:] = fill
    return moved


def slope_shift(before: np.ndarray, after: np.ndarray, shifts=SCROLL_SHIFTS) -> int:
    """How many rows (105x80) the slope moved up from one frame to the next: of `shifts`, the
    one under which the frame before, moved, differs least from the frame after, away from
    the skier."""
    body_before, body_after = before[HUD_ROWS:SLOPE_END], after[HUD_ROWS:SLOPE_END]
    clean = np.where(body_before == SKIER, SNOW, body_before)
    scores = []
    for dy in shifts:
        moved = moved_up(clean, dy, SNOW)
        mask = (body_before != SKIER) & (body_after != SKIER)
        scores.append(int(((moved != body_after) & mask).sum()))
    return list(shifts)[int(np.argmin(scores))]


def slope_scroll(frames: np.ndarray) -> int:
    """How many rows (105x80) the slope moved up over `frames` (T, 105, 80). Each frame is
    aligned with an earlier one, not just the one before: a step often moves the slope half
    a row, which frame-to-frame shifts round away (summed over 15 frames they fell short by
    2 rows or more in about 2% of the held-out windows). The frame measured from moves on to
    the one before once the slope has moved SCROLL_ANCHOR rows from it."""
    shifts = range(SCROLL_ANCHOR + max(SCROLL_SHIFTS) + 1)
    total, anchor, last = 0, 0, 0
    for t in range(1, len(frames)):
        shift = slope_shift(frames[anchor], frames[t], shifts)
        if shift >= SCROLL_ANCHOR and anchor < t - 1:
            total, anchor = total + last, t - 1
            shift = slope_shift(frames[anchor], frames[t], shifts)
        last = shift
    return total + last


@dataclass
class SkierTables:
    """How ALE's skier moves, as dense tables of each byte's change a console frame:
    `turn` and `timer` by heading, timer and key; `speed` by speed and the heading turned
    to; `b19` and `b20` by the heading turned to and themselves; `move` (1/32 px) by speed
    and RAM[19]; `downhill` (the slope's motion, 1/32 px) by speed and RAM[20]. `walls`:
    the columns (1/32 px) the skier keeps within. `states`: every five-byte state the
    replays show. Each sprite seen: the headings and column offsets (ALE's column less
    twice the sprite's leftmost column) it is drawn with. `course`: the slope below the
    screen, as far down as the replays went, and its `objects`. `falls`: where a standing
    skier falls, each a rule that an object of a kind moving up past a screen row (`lag`
    console frames before), the skier's column less the object's left column between `low`
    and `high`, fells it; `fallen`: what a fall sets."""

    turn: np.ndarray
    timer: np.ndarray
    speed: np.ndarray
    b19: np.ndarray
    b20: np.ndarray
    move: np.ndarray
    downhill: np.ndarray
    walls: tuple[int, int]
    states: np.ndarray
    sprites: dict[SpriteKey, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    rows: tuple[int, int] | None = None  # the first and last row (105x80) frames draw the skier in; older tables: None
    course: np.ndarray | None = None  # the course down the slope (`neuralplay.runtime.skiing_course`); older tables: None
    objects: np.ndarray | None = None  # the course's objects (`skiing_course.objects_of`); older tables: None
    falls: np.ndarray | None = None  # (R, 5) kind, lag, row, low, high: where the skier falls; older tables: None
    fallen: np.ndarray | None = None  # (16, 3) speed, heading and turn timer a fall sets, by the heading before it

    TABLES = ("turn", "timer", "speed", "b19", "b20", "move", "downhill")
    COURSE = ("course", "objects", "falls", "fallen")  # optional: older tables have none of them

    @property
    def reach(self) -> float:
        """The farthest any sprite's pixel lies from the sprite's mean column, in pixels."""
        farthest = 0.0
        for height, width, bits in self.sprites:
            columns = np.nonzero(sprite_mask(height, width, bits))[1]
            farthest = max(farthest, float(np.abs(columns - columns.mean()).max()))
        return farthest

    @property
    def offsets(self) -> tuple[int, int]:
        """The lowest and highest column offset any sprite is drawn with."""
        every = np.concatenate([o for _, o in self.sprites.values()])
        return int(every.min()), int(every.max())

    def save(self, path: Path) -> Path:
        """The tables as one .npz of plain arrays (the sprites' ragged parts concatenated,
        with their lengths)."""
        keys = list(self.sprites)
        ragged = {"bits": [np.frombuffer(k[2], np.uint8) for k in keys],
                  "headings": [self.sprites[k][0] for k in keys], "offsets": [self.sprites[k][1] for k in keys]}
        rows = {} if self.rows is None else {"rows": np.array(self.rows, np.int64)}
        course = {name: getattr(self, name) for name in self.COURSE if getattr(self, name) is not None}
        np.savez_compressed(
            path, **{name: getattr(self, name) for name in self.TABLES}, walls=np.array(self.walls), **rows, **course,
            states=self.states, sprite_shapes=np.array([k[:2] for k in keys], np.int64).reshape(-1, 2),
            **{f"sprite_{name}": np.concatenate(parts) for name, parts in ragged.items()},
            **{f"sprite_{name}_lengths": np.array([len(p) for p in parts]) for name, parts in ragged.items()})
        return Path(path)

    @classmethod
    def load(cls, path: Path) -> SkierTables:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"no skier-state tables at {path}: {FIX}")
        try:
            with np.load(path, allow_pickle=False) as z:
                parts = {name: np.split(z[f"sprite_{name}"], np.cumsum(z[f"sprite_{name}_lengths"])[:-1])
                         for name in ("bits", "headings", "offsets")}
                sprites = {(int(h), int(w), bits.astype(np.uint8).tobytes()):
                           (hd.astype(np.int64), off.astype(np.int64))
                           for (h, w), bits, hd, off in zip(z["sprite_shapes"], *parts.values())}
                tables = cls(**{name: z[name].astype(np.int64) for name in cls.TABLES},
                             walls=tuple(int(w) for w in z["walls"]), states=z["states"].astype(np.int64),
                             sprites=sprites, rows=tuple(int(r) for r in z["rows"]) if "rows" in z.files else None,
                             **{name: z[name].astype(np.uint8 if name == "course" else np.int64)
                                for name in cls.COURSE if name in z.files})
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            raise UserError(f"{path} is not a skier-state table file ({type(err).__name__}): {FIX}") from None
        if (not sprites or tables.turn.shape != (256, 256, 3) or tables.states.shape[1:] != (len(STATE_BYTES),)
                or (tables.course is not None and tables.course.ndim != 2)):
            raise UserError(f"{path} holds tables of another shape: {FIX}")
        return tables

    def step(self, c: np.ndarray, key: int) -> np.ndarray:
        """Candidates (N, 7: the five bytes, the column in 1/32 px, the downhill motion
        summed) one console frame on under `key`."""
        speed, heading, b19, b20, timer, column, downhill = c.T
        h, t, s, x, y = heading % 256, timer % 256, speed % 256, b19 % 256, b20 % 256
        turned = (heading + self.turn[h, t, key]) % 256
        return np.stack([speed + self.speed[s, turned], turned, b19 + self.b19[turned, x],
                         b20 + self.b20[turned, y], timer + self.timer[h, t, key],
                         np.clip(column + self.move[s, x], *self.walls), downhill + self.downhill[s, y]], 1)

    def agree(self, c: np.ndarray, frame: np.ndarray) -> np.ndarray:
        """Which candidates a frame's skier sprite allows (all where it shows none; only the
        column, loosely, for a sprite never seen)."""
        key, left = sprite(frame)
        if key is None:
            return np.ones(len(c), bool)
        offset = c[:, COLUMN] // SUBPIXELS - 2 * left
        if key not in self.sprites:
            low, high = self.offsets
            return (offset >= low) & (offset <= high)
        headings, offsets = self.sprites[key]
        return np.isin(c[:, HEADING], headings) & np.isin(offset, offsets)

    def first_candidates(self, frame: np.ndarray) -> np.ndarray | None:
        """Every state that the frame's sprite allows, at every column it allows; None where
        the frame shows no skier."""
        key, left = sprite(frame)
        if key is None:
            return None
        if key in self.sprites:
            headings, offsets = self.sprites[key]
            states = self.states[np.isin(self.states[:, 1], headings)]
        else:
            low, high = self.offsets
            states, offsets = self.states, np.arange(low, high + 1)
        columns = ((2 * left + offsets)[:, None] * SUBPIXELS + np.arange(SUBPIXELS)).ravel()
        n, m = len(states), len(columns)
        return np.column_stack([np.repeat(states, m, 0), np.tile(columns, n), np.zeros(n * m, np.int64)])

    @property
    def can_fall(self) -> bool:
        """Whether the tables hold a course with its objects and a fall rule to fell the skier by."""
        return self.objects is not None and self.falls is not None and len(self.falls) > 0

    def falling(self, c: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Which standing candidates fall in the console frame they are about to step, given
        how far down the course (native rows) the slope is for each of them (3, N): now, a
        frame before and two before."""
        falls = np.zeros(len(c), bool)
        standing = c[:, HEADING] < FALLEN_FROM
        if not self.can_fall or not standing.any():
            return falls
        column = c[:, COLUMN] // SUBPIXELS
        middle = int(np.median(rows[0]))
        for kind, lag, row, low, high in self.falls:
            near = np.abs(self.objects[:, TOP] - middle + 2 * HUD_ROWS - row) < FALL_NEAR
            tops = self.objects[(self.objects[:, KIND] == kind) & near]
            for top, left in tops[:, [TOP, LEFT]]:
                after, before = top - rows[lag] + 2 * HUD_ROWS, top - rows[lag + 1] + 2 * HUD_ROWS
                span = column - left
                falls |= (after <= row) & (before > row) & (span >= low) & (span <= high)
        return falls & standing

    def fall(self, before: np.ndarray, after: np.ndarray, falls: np.ndarray) -> np.ndarray:
        """The candidates stepped (`after`), those that fell (`falls`) with what a fall sets
        by their heading `before`."""
        if not falls.any():
            return after
        after = after.copy()
        after[np.ix_(falls, [SPEED, HEADING, TIMER])] = self.fallen[before[falls, HEADING]]
        return after


@dataclass
class SkierState:
    """The candidates for ALE's skier state, read off a context and stepped by the keys."""

    tables: SkierTables
    seed: int = 0
    candidates: np.ndarray = field(init=False, repr=False)
    key_before: int = field(init=False, default=0)  # the key that led to the last frame
    course_at: int | None = field(init=False, default=None)  # where `place`d: the course's row of no downhill motion
    downhill_before: np.ndarray = field(init=False, repr=False)  # each candidate's downhill a frame and two before
    placed_downhill: int = field(init=False, default=0)  # the candidates' downhill (median) where placed

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.candidates = np.zeros((0, 7), np.int64)
        self.downhill_before = np.zeros((0, 2), np.int64)

    def read(self, frames: np.ndarray, actions: np.ndarray, scroll: bool = True) -> bool:
        """Read the state at the last of `frames` (T, 105, 80) given the T - 1 `actions`
        between them (frames[1:] are read: the first has no key before it): the sprites,
        and with `scroll` the slope's scroll over them; whether every frame read kept some
        candidates. Where the second frame shows no skier nothing is read and `column` is NaN."""
        frames, actions = np.asarray(frames), np.asarray(actions, np.int64)
        if len(actions) != len(frames) - 1:
            raise ValueError(f"{len(frames)} frames take {len(frames) - 1} actions, not {len(actions)}")
        self.key_before = int(actions[-1]) if len(actions) else 0
        self.course_at = None
        c = self.tables.first_candidates(frames[1]) if len(frames) > 1 else None
        if c is None:
            self.candidates = np.zeros((0, 7), np.int64)
            return False
        every_read = True
        down = self.course_motion(frames) if scroll else [None] * len(frames)
        for t in range(2, len(frames)):
            c = self.cap(c, MAX_READ)
            for key in (actions[t - 2],) + (actions[t - 1],) * (FRAMES_PER_STEP - 1):
                c = self.tables.step(c, int(key))
            c, kept = keep(c, self.tables.agree(c, frames[t]))
            every_read &= kept
            if down[t] is not None:
                c, kept = keep(c, np.abs(c[:, DOWNHILL] / SUBPIXELS - down[t]) < COURSE_TOLERANCE)
                every_read &= kept
            c = np.unique(c, axis=0)
        if scroll:
            scrolled = slope_scroll(frames[1:])
            c, kept = keep(c, np.abs(c[:, DOWNHILL] / (2 * SUBPIXELS) - scrolled) <= SCROLL_TOLERANCE)
            every_read &= kept
        self.candidates = c
        return every_read

    def course_motion(self, frames: np.ndarray) -> list[int | None]:
        """How far (native rows) the slope has moved from frames[1] at each frame, where the
        tables' course places both (`skiing_course.locate`); None where it does not. Each
        frame is placed to the native row, where the scroll between frames (`slope_scroll`)
        sees only their 105 rows: placed, the candidates' speed is pinned frame by frame."""
        if self.tables.course is None or len(frames) < 2:
            return [None] * len(frames)
        at = [None] + [locate(self.tables.course, frame) for frame in frames[1:]]
        return [None if a is None or at[1] is None else a - at[1] for a in at]

    def cap(self, c: np.ndarray, most: int) -> np.ndarray:
        return c[self.sample(len(c), most)]

    def sample(self, n: int, most: int) -> np.ndarray | slice:
        """Which of n candidates to keep: a seeded sample of `most`, or all."""
        return self.rng.choice(n, most, replace=False) if n > most else slice(None)

    def place(self, at: int | None) -> None:
        """Tell the state how far down the course (native rows) the last frame read is, so
        that each step lets the candidates fall where the tables' fall rules say (None: not
        found, no falls)."""
        self.course_at = at if at is not None and self.tables.can_fall and len(self.candidates) else None
        self.downhill_before = np.repeat(self.candidates[:, DOWNHILL:], 2, axis=1)
        self.placed_downhill = int(np.median(self.candidates[:, DOWNHILL])) if len(self.candidates) else 0

    def step(self, key: int) -> float:
        """Move the candidates on by a step under `key` (each console frame, where `place`d,
        felling those the fall rules fell); the new column."""
        kept = self.sample(len(self.candidates), MAX_CANDIDATES)
        c = self.candidates[kept]
        if len(c):
            before = self.downhill_before[kept] if self.course_at is not None else None
            for k in (self.key_before,) + (key,) * (FRAMES_PER_STEP - 1):
                stepped = self.tables.step(c, k)
                if before is not None:
                    downhill = np.column_stack([c[:, DOWNHILL], before]).T
                    stepped = self.tables.fall(c, stepped, self.tables.falling(c, self.course_rows(downhill)))
                    before = downhill[:2].T
                c = stepped
            if before is not None:
                self.downhill_before = before
        self.candidates, self.key_before = c, int(key)
        return self.column

    def course_rows(self, downhill: np.ndarray) -> np.ndarray:
        """How far down the course (native rows) the slope is at candidates' downhill motions."""
        return self.course_at + (downhill - self.placed_downhill) // SUBPIXELS

    @property
    def downhill(self) -> float:
        """How far (rows at 105x80) the slope has moved up since the frames read (the
        candidates' median), NaN if unread."""
        return float(np.median(self.candidates[:, DOWNHILL])) / (2 * SUBPIXELS) if len(self.candidates) else np.nan

    @property
    def column(self) -> float:
        """ALE's column of the skier in native pixels (the candidates' median), NaN if unread."""
        return float(np.median(self.candidates[:, COLUMN])) / SUBPIXELS if len(self.candidates) else np.nan


def keep(c: np.ndarray, agrees: np.ndarray) -> tuple[np.ndarray, bool]:
    """The candidates that agree, or all of them where none does (the reading failed); and
    whether any did."""
    return (c[agrees], True) if agrees.any() else (c, False)
