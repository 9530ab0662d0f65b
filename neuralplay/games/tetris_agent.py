"""A heuristic Tetris player that sees only the observation, so it can play the real
engine, the neural model, or a recording alike.

It picks the placement (rotation, column) that maximises a classic linear evaluation of
the resulting board (aggregate height, lines, holes, bumpiness), then presses the keys to
get there: rotate, slide, then hard or soft drop.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from neuralplay.games.tetris import (
    COLS, SPAWN_SHAPES, Cells, Event, apply_event, drop_distance, fits, lock,
    rotated_with_kicks, shift, split_observation,
)

WEIGHTS = {"height": -0.510066, "lines": 0.760666, "holes": -0.35663, "bumpiness": -0.184483}


def normalized(cells: Cells) -> Cells:
    r0 = min(r for r, _ in cells)
    c0 = min(c for _, c in cells)
    return tuple(sorted((r - r0, c - c0) for r, c in cells))


def _orientation_table() -> dict[Cells, str]:
    from neuralplay.games.tetris import rotate_cells

    table: dict[Cells, str] = {}
    for name, cells in SPAWN_SHAPES.items():
        for _ in range(4):
            table[normalized(cells)] = name
            cells = rotate_cells(cells)
    return table


ORIENTATIONS = _orientation_table()


def piece_of(cells: Cells) -> str | None:
    """Which tetromino these cells are, in any orientation; None if they are not one."""
    if len(cells) != 4:
        return None
    return ORIENTATIONS.get(normalized(cells))


def evaluate(board: np.ndarray, lines: int) -> float:
    filled = board.any(axis=0)
    heights = np.where(filled, board.shape[0] - board.argmax(axis=0), 0)
    holes = int(heights.sum() - board.sum())
    bumpiness = int(np.abs(np.diff(heights)).sum())
    return (WEIGHTS["height"] * heights.sum() + WEIGHTS["lines"] * lines
            + WEIGHTS["holes"] * holes + WEIGHTS["bumpiness"] * bumpiness)


class Placement(NamedTuple):
    """Where a piece can go: its score, its rotation (normalized cells), its leftmost column,
    and the piece there, still at the rows it was turned at (a hard drop lands it)."""

    score: float
    pattern: Cells
    column: int
    cells: Cells


def placements(settled: np.ndarray, cells: Cells) -> list[Placement]:
    """Every rotation and column the piece can reach by turning, then moving sideways."""
    out = []
    current = cells
    for _ in range(4):
        pattern = normalized(current)
        c_min = min(c for _, c in current)
        for dc in range(-COLS, COLS):
            moved = current
            step = 1 if dc > 0 else -1
            ok = True
            for _ in range(abs(dc)):
                nxt = shift(moved, 0, step)
                if not fits(settled, nxt):
                    ok = False
                    break
                moved = nxt
            if not ok:
                continue
            landed = shift(moved, drop_distance(settled, moved), 0)
            board, lines = lock(settled, landed)
            out.append(Placement(evaluate(board, lines), pattern, c_min + dc, moved))
        turned = rotated_with_kicks(settled, current)
        if turned == current:
            break
        current = turned
    return out


def best_placement(options: list[Placement]) -> Placement:
    """The player's choice: the best score, the leftmost of equals."""
    return max(options, key=lambda o: (o.score, -o.column))


@dataclass
class HeuristicAgent:
    """Plays from observations. `drop` is "hard" or "soft"; `epsilon` mixes in random keys."""

    drop: str = "hard"
    epsilon: float = 0.0
    seed: int | None = None
    rng: np.random.Generator = field(init=False)
    _plan_key: bytes | None = field(default=None, init=False)
    _plan: tuple[Cells, int] | None = field(default=None, init=False)
    _last: tuple[bytes, int] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def act(self, obs: np.ndarray) -> Event:
        settled, cells = split_observation(obs)
        if not cells:
            return Event.NONE
        if self.epsilon and self.rng.random() < self.epsilon:
            return Event(int(self.rng.integers(len(Event))))
        key = settled.tobytes() + bytes(str(piece_of(cells)), "ascii")
        if key != self._plan_key:
            self._plan_key, self._plan = key, self._choose(settled, cells)
        action = self._next_key(cells)
        # A key that changed nothing (blocked) would be pressed forever: drop instead.
        state = (obs.tobytes(), int(action))
        if action != self._finish() and self._last == state:
            action = self._finish()
        self._last = state
        return action

    def _finish(self) -> Event:
        return Event.HARD_DROP if self.drop == "hard" else Event.SOFT_DROP

    def _choose(self, settled: np.ndarray, cells: Cells) -> tuple[Cells, int] | None:
        options = placements(settled, cells)
        if not options:
            return None
        best = best_placement(options)
        return best.pattern, best.column

    def _next_key(self, cells: Cells) -> Event:
        if self._plan is None:
            return self._finish()
        pattern, target_col = self._plan
        if normalized(cells) != pattern:
            return Event.ROTATE
        c_min = min(c for _, c in cells)
        if c_min < target_col:
            return Event.RIGHT
        if c_min > target_col:
            return Event.LEFT
        return self._finish()


def follows_rules(obs: np.ndarray, event: Event | int, next_obs: np.ndarray) -> bool:
    """Whether next_obs follows from obs under event by the game's rules (or is a valid spawn).

    This is the closed-loop rule checker: a step with a falling piece must match the rules
    exactly; a step from a board without one must add one of the 7 spawn shapes on empty
    cells and change nothing else.
    """
    settled, cells = split_observation(obs)
    next_settled, next_cells = split_observation(next_obs)
    if not cells:  # a spawn: the settled cells stay, a spawn shape appears on empty cells
        return np.array_equal(next_settled, settled) and any(
            next_cells == s and fits(settled, s) for s in SPAWN_SHAPES.values())
    if piece_of(cells) is None:
        return False
    move = apply_event(settled, cells, Event(event))
    expected = tuple(sorted(move.cells)) if move.cells is not None else ()
    return np.array_equal(next_settled, move.settled) and next_cells == expected
