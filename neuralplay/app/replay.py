"""Replaying a recording in the app: a Session over recorded frames, with play/pause, steps
of 1 and 10, speed, and a seek bar."""
from __future__ import annotations

import numpy as np

from neuralplay.app.session import Pane
from neuralplay.recording.format import Recording

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
HELP = ["Space  play / pause", "Left / Right  step 1", "Down / Up  step 10",
        "+ / -  speed", "Home / End  start / end", "click the bar  seek"]


def pane_renderer(game: str):
    """(frame -> RGB image, pane size) for a game's recorded frames."""
    if game == "tetris":
        from neuralplay.app.tetris import CELL, PANE_SIZE
        from neuralplay.games.tetris_render import render_board

        return (lambda frame: render_board(frame, CELL)), PANE_SIZE
    if game == "skiing":
        from neuralplay.app.skiing import PANE_SIZE, render_recorded

        return render_recorded, PANE_SIZE
    from neuralplay.errors import UserError

    raise UserError(f"recordings of {game!r} cannot be replayed by this neuralplay: upgrade it")


class ReplaySession:
    over = False

    def __init__(self, rec: Recording, pygame):
        self.rec = rec
        self.pg = pygame
        self.render, self.pane_size = pane_renderer(rec.header["game"])
        self.names = [p for p in rec.panes() if f"frame_{p}" in rec.arrays]
        self.frames = [rec.arrays[f"frame_{p}"] for p in self.names]
        self.actions = rec.arrays.get("action", np.zeros(0, np.int64))
        self.t = rec.arrays.get("t", np.zeros(0))
        self.last = max(len(self.actions) - 1, 0)
        self.index = 0
        self.playing = True
        self.speed_i = SPEEDS.index(1.0)
        self.clock = float(self.t[0]) if len(self.t) else 0.0
        self.warning = "" if rec.complete else f"cut short ({rec.damaged or 'no end marker'}): replaying what was written  |  "

    @property
    def steps(self) -> int:
        return self.index

    @property
    def played(self) -> int:  # a replay ends where its last step is (--exit-at-end)
        return self.index

    def _go(self, index: int) -> None:
        self.index = int(np.clip(index, 0, self.last))
        self.clock = float(self.t[self.index]) if len(self.t) else 0.0

    def update(self, dt: float, pressed: list[int], held: set[int]) -> None:
        pg = self.pg
        moves = {pg.K_RIGHT: 1, pg.K_LEFT: -1, pg.K_UP: 10, pg.K_DOWN: -10}
        for key in pressed:
            if key == pg.K_SPACE:
                self.playing = not self.playing
                if self.playing and self.index >= self.last:
                    self._go(0)
            elif key in moves:
                self.playing = False
                self._go(self.index + moves[key])
            elif key in (pg.K_PLUS, pg.K_EQUALS, pg.K_KP_PLUS):
                self.speed_i = min(self.speed_i + 1, len(SPEEDS) - 1)
            elif key in (pg.K_MINUS, pg.K_KP_MINUS):
                self.speed_i = max(self.speed_i - 1, 0)
            elif key == pg.K_HOME:
                self._go(0)
            elif key == pg.K_END:
                self._go(self.last)
        if self.playing and len(self.t):
            self.clock += dt * SPEEDS[self.speed_i]
            while self.index < self.last and self.t[self.index + 1] <= self.clock:
                self.index += 1
            if self.index >= self.last:
                self.playing = False

    def panes(self) -> list[Pane]:
        if not self.frames:
            return []
        action = int(self.actions[self.index]) if len(self.actions) else -1
        what = "reset" if action < 0 else self._action_name(action)
        return [Pane(name.capitalize(), self.render(frames[self.index]), [f"step {self.index}", what])
                for name, frames in zip(self.names, self.frames)]

    def _action_name(self, action: int) -> str:
        if self.rec.header["game"] == "tetris":
            from neuralplay.games.tetris import EVENT_NAMES as names
        else:
            from neuralplay.games.skiing import ACTIONS as names
        return names[action] if action < len(names) else str(action)

    def status(self) -> str:
        state = "playing" if self.playing else "paused"
        t = float(self.t[self.index]) if len(self.t) else 0.0
        return (f"{self.warning}{state} x{SPEEDS[self.speed_i]:g}  |  step {self.index}/{self.last}  "
                f"|  {t:.1f} s  |  H for keys")

    def progress(self) -> float | None:
        return self.index / self.last if self.last else 0.0

    def seek(self, fraction: float) -> None:
        self._go(round(fraction * self.last))

    def help_lines(self) -> list[str]:
        return HELP

    def restart(self) -> None:
        self._go(0)
        self.playing = True

    def resync(self) -> bool:
        return False
