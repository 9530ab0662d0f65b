"""Tetris in the app: the keys, the clock of the game (gravity, entry delay, auto-repeat),
and the panes of the real engine, the neural model, or both side by side."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuralplay.app.session import Pane, recording_status
from neuralplay.games.tetris import (
    COLS, PIECES, ROWS, SPAWN_SHAPES, Event, TetrisGame, gravity_interval_s,
)
from neuralplay.games.tetris_agent import HeuristicAgent
from neuralplay.games.tetris_render import BACKGROUND, PIECE_COLOURS, render_board

CELL = 24
PANE_SIZE = (COLS * CELL, ROWS * CELL)
ENTRY_DELAY_S = 0.1  # after a lock, the next piece comes in this much later
DAS_S, ARR_S = 0.17, 0.05  # auto-repeat of held left/right/down: first delay, then period
AUTOPILOT_KEY_S = 0.08
DIFF_COLOUR = (255, 40, 40)

HELP = ["Left / Right  move", "Up or X  rotate", "Down  soft drop", "Space  hard drop"]


def key_bindings(pygame) -> dict[int, Event]:
    return {pygame.K_LEFT: Event.LEFT, pygame.K_RIGHT: Event.RIGHT, pygame.K_UP: Event.ROTATE,
            pygame.K_x: Event.ROTATE, pygame.K_DOWN: Event.SOFT_DROP, pygame.K_SPACE: Event.HARD_DROP}


REPEATING = (Event.LEFT, Event.RIGHT, Event.SOFT_DROP)


class TetrisControls:
    """Turns time and keys (or the autopilot) into engine events, as a Tetris game does."""

    def __init__(self, bindings: dict[int, Event], autopilot: HeuristicAgent | None):
        self.bindings = bindings
        self.autopilot = autopilot
        self.reset()

    def reset(self) -> None:
        self.gravity_t = 0.0
        self.entry_t = 0.0
        self.autopilot_t = 0.0
        self.repeat: dict[int, float] = {}

    def events(self, dt: float, pressed: list[int], held: set[int], board: np.ndarray,
               level: int) -> list[Event]:
        if not board[1].any():  # no falling piece: the next one enters after the entry delay
            self.entry_t += dt
            if self.entry_t < ENTRY_DELAY_S:
                return []
            self.entry_t = self.gravity_t = 0.0
            return [Event.NONE]
        out: list[Event] = []
        if self.autopilot is not None:
            self.autopilot_t += dt
            if self.autopilot_t >= AUTOPILOT_KEY_S:
                self.autopilot_t = 0.0
                out.append(self.autopilot.act(board))
        for key in pressed:
            if key in self.bindings:
                out.append(self.bindings[key])
                self.repeat[key] = -DAS_S
        for key, t in list(self.repeat.items()):
            if key not in held:
                del self.repeat[key]
                continue
            t += dt
            if t >= ARR_S and self.bindings[key] in REPEATING:
                out.append(self.bindings[key])
                t = 0.0
            self.repeat[key] = t
        self.gravity_t += dt
        if self.gravity_t >= gravity_interval_s(level):
            self.gravity_t = 0.0
            out.append(Event.NONE)
        return out


def preview_image(piece: str, cell: int = 20) -> np.ndarray:
    """The next piece as a small picture (its spawn shape, columns 3-6)."""
    image = np.zeros((2 * cell, 4 * cell, 3), np.uint8)
    image[:] = BACKGROUND
    for r, c in SPAWN_SHAPES[piece]:
        image[r * cell + 1:(r + 1) * cell - 1, (c - 3) * cell + 1:(c - 2) * cell - 1] = PIECE_COLOURS[piece]
    return image


def mark_differences(image: np.ndarray, mine: np.ndarray, other: np.ndarray, cell: int) -> np.ndarray:
    """Outline in red the cells where two boards differ (filled vs empty)."""
    differ = mine.astype(bool).any(axis=0) != other.astype(bool).any(axis=0)
    out = image.copy()
    for r, c in zip(*np.nonzero(differ)):
        y, x = r * cell, c * cell
        out[y:y + cell, [x, x + 1, x + cell - 2, x + cell - 1]] = DIFF_COLOUR
        out[[y, y + 1, y + cell - 2, y + cell - 1], x:x + cell] = DIFF_COLOUR
    return out


@dataclass
class Agreement:
    """Live agreement of the neural board with the real one in compare mode."""

    steps: int = 0
    boards_equal: int = 0
    cells: float = 1.0

    def add(self, real: np.ndarray, neural: np.ndarray) -> None:
        same = real.astype(bool).any(axis=0) == neural.astype(bool).any(axis=0)
        self.cells = float(same.mean())
        self.steps += 1
        self.boards_equal += bool(same.all())

    def line(self) -> str:
        rate = self.boards_equal / self.steps if self.steps else 1.0
        return (f"agreement: cells now {self.cells:.1%}, boards equal {rate:.1%} of "
                f"{self.steps} steps  |  S re-syncs neural to real")


class TetrisSession:
    """engine: "neural", "real" or "compare" (both, the same keys driving each)."""

    def __init__(self, engine: str, seed: int, pygame, model=None, autopilot: bool = False,
                 level: int = 1, recorder=None):
        self.engine = engine
        self.recorder = recorder
        self.seed = seed
        self.real = TetrisGame(seed=seed, start_level=level) if engine in ("real", "compare") else None
        self.model = model
        self.controls = TetrisControls(
            key_bindings(pygame), HeuristicAgent(seed=seed) if autopilot else None)
        self.autopilot = autopilot
        self.played = 0
        self.restart()

    def restart(self) -> None:
        self.steps = 0
        self.over = False
        self.controls.reset()
        self.agreement = Agreement()
        start = self.real.reset(self.seed) if self.real else TetrisGame(seed=self.seed).observation()
        if self.model is not None:
            self.model.reset(start, seed=self.seed)
        self.seed += 1
        self._record(-1, 0.0)

    def resync(self) -> bool:
        if self.real is None or self.model is None:
            return False
        self.model.sync(self.real.observation())
        return True

    @property
    def driving_board(self) -> np.ndarray:
        return self.real.observation() if self.real else self.model.board

    def update(self, dt: float, pressed: list[int], held: set[int]) -> None:
        if self.over:
            if self.autopilot:
                self.restart()
            return
        level = self.real.level if self.real else self.model.level
        for event in self.controls.events(dt, pressed, held, self.driving_board, level):
            self.step(event)
            if self.over:
                break

    def step(self, event: Event) -> None:
        spawned = None
        if self.real is not None:
            result = self.real.step(event)
            spawned = result.spawned
            self.over = result.game_over
        if self.model is not None:
            piece = PIECES.index(spawned) if spawned else None
            self.model.step(int(event), spawn_piece=piece)
            if self.real is None:
                self.over = self.model.game_over
            else:
                self.agreement.add(self.real.observation(), self.model.board)
        self.steps += 1
        self.played += 1
        reward = self.real.last_reward if self.real is not None else self.model.last_reward
        self._record(int(event), float(reward))

    def frames(self) -> dict[str, np.ndarray]:
        """What each pane shows now, by pane name (what a recording keeps)."""
        out = {}
        if self.real is not None:
            out["real"] = self.real.observation()
        if self.model is not None:
            out["neural"] = self.model.board
        return out

    def _record(self, action: int, reward: float) -> None:
        if self.recorder is not None:
            self.recorder.add(action, reward, self.frames())

    def panes(self) -> list[Pane]:
        out = []
        if self.real is not None:
            g = self.real
            out.append(Pane("Real", render_board(g.observation(), CELL),
                            [f"score {g.score}", f"lines {g.lines}", f"level {g.level}", "next"],
                            preview_image(g.next_piece)))
        if self.model is not None:
            m = self.model
            image = render_board(m.board, CELL)
            if self.real is not None:
                image = mark_differences(image, m.board, self.real.observation(), CELL)
            out.append(Pane("Neural", image, [f"score {m.score}", f"lines {m.lines}",
                                              f"level {m.level}", f"steps {self.steps}"]))
        return out

    def status(self) -> str:
        if self.engine == "compare":
            line = self.agreement.line()
        else:
            who = "autopilot" if self.autopilot else "H for help"
            line = f"{self.engine} Tetris  |  {who}  |  step {self.steps}"
        return recording_status(self.recorder) + line

    def help_lines(self) -> list[str]:
        return HELP + (["S  re-sync neural to real"] if self.engine == "compare" else [])

    def progress(self) -> None:
        return None

    def seek(self, fraction: float) -> None:
        pass
