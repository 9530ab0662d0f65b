"""Skiing in the app: held keys steer, the game steps at the console's pace (60 Hz divided
by the frameskip: 15 steps/s by default), frames are scaled up with nearest neighbour.

Engines: `real` (ALE), `neural` (the world model from a shipped start state) and `compare`
(ALE from the same start beside the model, the same actions to both; the neural pane shows
the difference image and live PSNR, S puts the model back onto ALE's last frames).
"""
from __future__ import annotations

from collections import deque

import numpy as np

from neuralplay.app.session import Pane, recording_status
from neuralplay.games.skiing import (
    NATIVE, SkiingGame, TargetPlayer, difference_image, downsample, psnr_db, to_palette, to_rgb, upsample,
)

PANE_SIZE = (NATIVE[1] * 3, NATIVE[0] * 3)
HELP = ["Left / Right  steer (hold)", "nothing held  go straight on"]
COMPARE_HELP = HELP + ["S  re-sync neural to real"]
MAX_CATCH_UP = 2  # steps one update may take; a slow machine slows the game, not the window


class SkiingSession:
    def __init__(self, engine: str, seed: int, pygame, model=None, starts=None, autopilot: bool = False,
                 frameskip: int = 4, recorder=None):
        self.pg, self.engine, self.seed = pygame, engine, seed
        self.model, self.starts = model, starts
        self.game = SkiingGame(frameskip=frameskip) if engine != "neural" else None
        self.steps_per_s = 60 / frameskip
        self.autopilot = TargetPlayer("gates", seed=seed) if autopilot else None
        self.recorder = recorder
        self.played = 0
        self.restart()

    # --- the game's clock and keys ---

    def restart(self) -> None:
        self.steps, self.clock, self.over, self.score = 0, 0.0, False, 0.0
        self.psnr: deque[float] = deque(maxlen=150)
        if self.model is None:
            self.game.reset(self.seed)
            self.real = to_palette(self.game.frame)
        else:
            self._start_from(self.starts[self.seed % len(self.starts)])
        self.seed += 1
        self._record(-1, 0.0)

    def _start_from(self, start) -> None:
        """Both sides at the start state: ALE replays its actions, the model gets its frames."""
        self.recent = deque(start.frames, maxlen=len(start.frames))  # model-resolution real frames
        self.recent_actions = deque(start.actions_into_frames(), maxlen=len(start.frames) - 1)
        if self.game is not None:
            self.game.reset(start.seed)
            for action in start.actions:
                self.game.step(int(action))
            self.real = to_palette(self.game.frame)
        self.neural = self.model.reset(start.frames, start.actions_into_frames())

    def resync(self) -> bool:
        if self.engine != "compare":
            return False
        self.neural = self.model.reset(np.stack(self.recent), np.array(self.recent_actions))
        self.psnr.clear()
        return True

    def _action(self, held: set[int]) -> int:
        if self.autopilot is not None:
            return self.autopilot.act(self.driving_frame())
        if self.pg.K_LEFT in held and self.pg.K_RIGHT not in held:
            return 2
        if self.pg.K_RIGHT in held and self.pg.K_LEFT not in held:
            return 1
        return 0

    def driving_frame(self) -> np.ndarray:
        """The full-size palette frame the player (or autopilot) is looking at."""
        return self.real if self.game is not None else upsample(self.neural)

    def update(self, dt: float, pressed: list[int], held: set[int]) -> None:
        if self.over:
            if self.autopilot is not None:
                self.restart()
            return
        self.clock = min(self.clock + dt, MAX_CATCH_UP / self.steps_per_s)
        while self.clock >= 1 / self.steps_per_s and not self.over:
            self.clock -= 1 / self.steps_per_s
            self.step(self._action(held | set(pressed)))

    def step(self, action: int) -> None:
        reward = 0.0
        if self.game is not None:
            reward = self.game.step(action)
            self.real = to_palette(self.game.frame)
            self.over = self.game.over
            if self.model is not None:
                self.recent.append(downsample(self.real))
                self.recent_actions.append(action)
        if self.model is not None:
            self.neural = self.model.step(action)
            if self.game is None:
                reward = self.model.reward_per_step
        if self.engine == "compare":
            self.psnr.append(psnr_db(self.neural, downsample(self.real)))
        self.score += reward
        self.steps += 1
        self.played += 1
        self._record(action, reward)

    def _record(self, action: int, reward: float) -> None:
        if self.recorder is None:
            return
        frames = {"real": self.real} if self.game is not None else {}
        if self.model is not None:
            frames["neural"] = upsample(self.neural)
        self.recorder.add(action, reward, frames)

    # --- what the window shows ---

    def panes(self) -> list[Pane]:
        info = [f"steps {self.steps}", f"{self.steps_per_s:g} steps/s"]
        panes = []
        if self.game is not None:
            panes.append(Pane("Real", self.game.frame, [f"score {self.game.score:.0f}", *info]))
        if self.model is not None:
            lines, preview = ([f"time {self.score:.0f}", *info], None)
            if self.engine == "compare":
                lines = [f"PSNR {self.psnr[-1]:.1f} dB" if self.psnr else "PSNR -",
                         f"mean {np.mean(self.psnr):.1f} dB" if self.psnr else "", *info, "difference:"]
                preview = difference_image(self.neural, downsample(self.real)).repeat(2, 0).repeat(2, 1)
            panes.append(Pane("Neural", to_rgb(upsample(self.neural)), lines, preview))
        return panes

    def status(self) -> str:
        who = "autopilot" if self.autopilot else "H for help"
        sync = "  |  S re-syncs" if self.engine == "compare" else ""
        return f"{recording_status(self.recorder)}{self.engine} Skiing  |  {who}{sync}  |  step {self.steps}"

    def help_lines(self) -> list[str]:
        return COMPARE_HELP if self.engine == "compare" else HELP

    def progress(self) -> None:
        return None

    def seek(self, fraction: float) -> None:
        pass


def render_recorded(frame: np.ndarray) -> np.ndarray:
    """A recorded Skiing frame (palette indices) as RGB."""
    return to_rgb(frame)
