"""Skiing in the app: held keys steer, the game steps at the console's pace (60 Hz divided
by the frameskip: 15 steps/s by default), the frame is scaled up with nearest neighbour."""
from __future__ import annotations

import numpy as np

from neuralplay.app.session import Pane, recording_status
from neuralplay.games.skiing import NATIVE, SkiingGame, TargetPlayer, to_palette, to_rgb

PANE_SIZE = (NATIVE[1] * 3, NATIVE[0] * 3)
HELP = ["Left / Right  steer (hold)", "nothing held  go straight on"]


class SkiingSession:
    def __init__(self, seed: int, pygame, autopilot: bool = False, frameskip: int = 4, recorder=None):
        self.pg = pygame
        self.seed = seed
        self.game = SkiingGame(frameskip=frameskip)
        self.autopilot = TargetPlayer("gates", seed=seed) if autopilot else None
        self.recorder = recorder
        self.restart()

    def restart(self) -> None:
        self.game.reset(self.seed)
        self.seed += 1
        self.steps = 0
        self.clock = 0.0
        self.over = False
        self.palette_frame = to_palette(self.game.frame)
        self._record(-1, 0.0)

    def resync(self) -> bool:
        return False

    def _action(self, held: set[int]) -> int:
        if self.autopilot is not None:
            return self.autopilot.act(self.palette_frame)
        if self.pg.K_LEFT in held and self.pg.K_RIGHT not in held:
            return 2
        if self.pg.K_RIGHT in held and self.pg.K_LEFT not in held:
            return 1
        return 0

    def update(self, dt: float, pressed: list[int], held: set[int]) -> None:
        if self.over:
            if self.autopilot is not None:
                self.restart()
            return
        self.clock += dt
        period = 1 / self.game.steps_per_s
        while self.clock >= period and not self.over:
            self.clock -= period
            action = self._action(held | set(pressed))
            reward = self.game.step(action)
            self.palette_frame = to_palette(self.game.frame)
            self.steps += 1
            self.over = self.game.over
            self._record(action, reward)

    def _record(self, action: int, reward: float) -> None:
        if self.recorder is not None:
            self.recorder.add(action, reward, {"real": self.palette_frame})

    def panes(self) -> list[Pane]:
        g = self.game
        return [Pane("Real", g.frame, [f"score {g.score:.0f}", f"steps {self.steps}",
                                       f"{g.steps_per_s:g} steps/s"])]

    def status(self) -> str:
        who = "autopilot" if self.autopilot else "H for help"
        return f"{recording_status(self.recorder)}real Skiing  |  {who}  |  step {self.steps}"

    def help_lines(self) -> list[str]:
        return HELP

    def progress(self) -> None:
        return None

    def seek(self, fraction: float) -> None:
        pass


def render_recorded(frame: np.ndarray) -> np.ndarray:
    """A recorded Skiing frame (palette indices) as RGB."""
    return to_rgb(frame)
