"""The real Tetris engine: rules as pure functions of the board, and a seeded game on top.

A step is either deterministic (a move, a rotation, a drop, a lock with its line clears)
or a spawn: after a lock the board has no falling piece, and the next event (in the app,
the gravity tick after a short entry delay) brings the next piece in. Spawns are the only
randomness, and they happen only from a board with no falling piece.

The rules are written over two things only, the settled cells and the falling piece's
cells, so that everything the engine does next follows from its observation. Rotation is
a rotation of the piece's bounding box (with wall and floor kicks), not a lookup in a
hidden orientation state: this is what makes the observation Markov, and what lets the
rule checker judge a neural board by the same code the game runs on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

ROWS, COLS = 22, 10
PIECES = "IOJTSLZ"

Cell = tuple[int, int]
Cells = tuple[Cell, ...]

# Spawn shapes of the seed project: rows 0-1, columns 3-6 (DESIGN.md).
SPAWN_SHAPES: dict[str, Cells] = {
    "I": ((0, 3), (0, 4), (0, 5), (0, 6)),
    "O": ((0, 4), (0, 5), (1, 4), (1, 5)),
    "J": ((0, 3), (1, 3), (1, 4), (1, 5)),
    "T": ((0, 3), (0, 4), (0, 5), (1, 4)),
    "S": ((0, 4), (0, 5), (1, 3), (1, 4)),
    "L": ((0, 5), (1, 3), (1, 4), (1, 5)),
    "Z": ((0, 3), (0, 4), (1, 4), (1, 5)),
}

# Tried in order when a rotated piece does not fit: stay, left, right, up, 2 left, 2 right.
ROTATION_KICKS: tuple[Cell, ...] = ((0, 0), (0, -1), (0, 1), (-1, 0), (0, -2), (0, 2))

LINE_SCORES = (0, 100, 300, 500, 800)


class Event(IntEnum):
    """What can happen to the board in one step: gravity or one of the player's keys."""

    NONE = 0  # gravity tick
    LEFT = 1
    RIGHT = 2
    ROTATE = 3
    SOFT_DROP = 4
    HARD_DROP = 5


EVENT_NAMES = [e.name.lower() for e in Event]


def fits(settled: np.ndarray, cells: Cells) -> bool:
    """True when every cell is on the board and not on a settled cell."""
    for r, c in cells:
        if not (0 <= r < ROWS and 0 <= c < COLS) or settled.item(r, c):
            return False
    return True


def shift(cells: Cells, dr: int, dc: int) -> Cells:
    return tuple((r + dr, c + dc) for r, c in cells)


def rotate_cells(cells: Cells) -> Cells:
    """Clockwise rotation of the piece's bounding box, kept at its top row and centre column.

    The column offset is truncated toward zero, so four rotations bring a piece back to
    where it started.
    """
    rows = [r for r, _ in cells]
    cols = [c for _, c in cells]
    r0, c0 = min(rows), min(cols)
    h, w = max(rows) - r0 + 1, max(cols) - c0 + 1
    new_c0 = c0 + int((w - h) / 2)
    return tuple(sorted((r0 + (c - c0), new_c0 + (h - 1 - (r - r0))) for r, c in cells))


def rotated_with_kicks(settled: np.ndarray, cells: Cells) -> Cells:
    """The rotated piece after the first kick that fits, or the piece unchanged."""
    turned = rotate_cells(cells)
    for dr, dc in ROTATION_KICKS:
        moved = shift(turned, dr, dc)
        if fits(settled, moved):
            return moved
    return cells


def drop_distance(settled: np.ndarray, cells: Cells) -> int:
    """How many rows the piece can fall before it rests."""
    distance = ROWS
    for r, c in cells:
        below = settled[r + 1:, c]
        gap = int(below.argmax()) if below.any() else len(below)
        distance = min(distance, gap)
    return distance


def lock(settled: np.ndarray, cells: Cells) -> tuple[np.ndarray, int]:
    """Settle the piece and clear full rows; returns the new settled board and rows cleared."""
    board = settled.copy()
    for r, c in cells:
        board[r, c] = True
    full = board.all(axis=1)
    cleared = int(full.sum())
    if cleared:
        kept = board[~full]
        board = np.vstack([np.zeros((cleared, COLS), dtype=bool), kept])
    return board, cleared


@dataclass(frozen=True)
class Move:
    """The deterministic part of one step: the board after the event, before any spawn."""

    settled: np.ndarray
    cells: Cells | None  # None when the piece locked and a new one must spawn
    lines: int = 0
    rows_dropped: int = 0


def apply_event(settled: np.ndarray, cells: Cells, event: Event) -> Move:
    """The rules: what one event does to (settled, falling piece)."""
    if event in (Event.LEFT, Event.RIGHT):
        moved = shift(cells, 0, -1 if event == Event.LEFT else 1)
        return Move(settled, moved if fits(settled, moved) else cells)
    if event == Event.ROTATE:
        return Move(settled, rotated_with_kicks(settled, cells))
    if event == Event.HARD_DROP:
        d = drop_distance(settled, cells)
        board, lines = lock(settled, shift(cells, d, 0))
        return Move(board, None, lines, d)
    down = shift(cells, 1, 0)  # gravity and soft drop: one row down, or lock
    if fits(settled, down):
        return Move(settled, down, 0, 1)
    board, lines = lock(settled, cells)
    return Move(board, None, lines, 0)


def observation(settled: np.ndarray, cells: Cells | None) -> np.ndarray:
    """The Markov observation: uint8 (2, ROWS, COLS), channel 0 settled, channel 1 falling."""
    obs = np.zeros((2, ROWS, COLS), dtype=np.uint8)
    obs[0] = settled
    if cells:
        for r, c in cells:
            if 0 <= r < ROWS and 0 <= c < COLS:
                obs[1, r, c] = 1
    return obs


def split_observation(obs: np.ndarray) -> tuple[np.ndarray, Cells]:
    """(settled board, falling cells) of an observation."""
    settled = obs[0].astype(bool)
    rows, cols = np.nonzero(obs[1])
    return settled, tuple(sorted(zip(rows.tolist(), cols.tolist())))


def lines_cleared(before: np.ndarray, after: np.ndarray) -> int:
    """Rows cleared between two observations, read off the boards alone (0 unless a lock)."""
    if not before[1].any() or after[1].any():
        return 0
    gone = int(before.sum()) - int(after[0].sum())
    return min(max(round(gone / COLS), 0), 4)


def rows_dropped(before: np.ndarray, after: np.ndarray, event: Event) -> int:
    """Rows a drop moved the falling piece, read off two observations: a hard drop that
    locked the piece scores the distance it could fall on the board before; a soft drop
    scores 1 when the piece came one row lower, 0 when it locked."""
    if not before[1].any():
        return 0
    if event == Event.HARD_DROP and not after[1].any():
        return drop_distance(*split_observation(before))
    if event == Event.SOFT_DROP and not before[1, -1].any():
        return int(np.array_equal(after[1, 1:], before[1, :-1]) and not after[1, 0].any())
    return 0


def step_reward(event: Event, lines: int, rows: int, level: int) -> int:
    """The score of one step: 100/300/500/800 x level for 1-4 lines, plus 1 per
    soft-dropped row and 2 per hard-dropped row."""
    drop_points = {Event.SOFT_DROP: 1, Event.HARD_DROP: 2}.get(Event(event), 0)
    return LINE_SCORES[lines] * level + drop_points * rows


def spawn_blocked(obs: np.ndarray) -> bool:
    """Game over as a board shows it: the falling piece overlaps settled cells."""
    return bool((obs[0] & obs[1]).any())


def level_after(start_level: int, lines: int) -> int:
    """The level: one up for every 10 lines cleared."""
    return start_level + lines // 10


def gravity_interval_s(level: int) -> float:
    """Seconds per gravity row at a level (the guideline curve, floored at 1/60 s)."""
    return max((0.8 - (level - 1) * 0.007) ** (level - 1), 1 / 60)


@dataclass
class StepResult:
    lines: int  # rows cleared by this step
    locked: bool  # the piece settled; the next step spawns a new one
    spawned: str | None  # the piece this step spawned
    game_over: bool  # the spawned piece did not fit
    reward: int


@dataclass
class TetrisGame:
    """One seeded game of Tetris: pieces drawn uniformly at random from the game's own rng."""

    seed: int | None = None
    start_level: int = 1
    settled: np.ndarray = field(init=False)
    cells: Cells | None = field(init=False)  # None between a lock and the next spawn
    piece: str = field(init=False)
    next_piece: str = field(init=False)
    score: int = field(init=False)
    lines: int = field(init=False)
    game_over: bool = field(init=False)

    def __post_init__(self) -> None:
        self.reset(self.seed)

    def reset(self, seed: int | None = None) -> np.ndarray:
        self.rng = np.random.default_rng(seed)
        self.settled = np.zeros((ROWS, COLS), dtype=bool)
        self.score = 0
        self.lines = 0
        self.last_reward = 0
        self.game_over = False
        self.next_piece = self._draw()
        self._spawn()
        return self.observation()

    @property
    def level(self) -> int:
        return level_after(self.start_level, self.lines)

    def observation(self) -> np.ndarray:
        return observation(self.settled, self.cells)

    def set_board(self, settled: np.ndarray, cells: Cells | None) -> None:
        """Put the game in a given state (used to test rules and to re-sync)."""
        self.settled = settled.astype(bool).copy()
        self.cells = tuple(sorted(cells)) if cells else None
        self.game_over = False

    def _draw(self) -> str:
        return PIECES[int(self.rng.integers(len(PIECES)))]

    def _spawn(self) -> None:
        self.piece, self.next_piece = self.next_piece, self._draw()
        self.cells = SPAWN_SHAPES[self.piece]
        self.game_over = not fits(self.settled, self.cells)

    def step(self, event: Event | int) -> StepResult:
        """One event. With no falling piece (just after a lock), any event spawns the next one."""
        if self.game_over:
            raise RuntimeError("step() after game over: call reset()")
        if self.cells is None:
            self._spawn()
            self.last_reward = 0
            return StepResult(0, False, self.piece, self.game_over, 0)
        move = apply_event(self.settled, self.cells, Event(event))
        self.settled = move.settled
        reward = step_reward(Event(event), move.lines, move.rows_dropped, self.level)
        self.lines += move.lines
        self.score += reward
        self.last_reward = reward
        self.cells = move.cells
        return StepResult(move.lines, move.cells is None, None, False, reward)
