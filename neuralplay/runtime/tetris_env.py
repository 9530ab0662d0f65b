"""Neural Tetris as a gymnasium env: `neuralplay/NeuralTetris-v0`, with the spaces of
`neuralplay/Tetris-v0`. Every observation after reset comes from the world model."""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from neuralplay.games.tetris import TetrisGame
from neuralplay.games.tetris_env import ACTION_SPACE, OBSERVATION_SPACE
from neuralplay.games.tetris_render import render_board
from neuralplay.runtime.tetris import NeuralTetris


class NeuralTetrisEnv(gym.Env):
    """reset() starts from the real engine's first board for the seed, or from
    `options={"board": obs}`. Reward is the real game's score (lines cleared times the
    level, drop points) of the model's boards."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 60}

    def __init__(self, render_mode: str | None = None, checkpoint: str | None = None, threads: int = 1,
                 start_level: int = 1):
        self.observation_space = OBSERVATION_SPACE
        self.action_space = ACTION_SPACE
        self.render_mode = render_mode
        self.model = NeuralTetris(checkpoint, threads=threads, start_level=start_level)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        board = (options or {}).get("board")
        if board is None:
            board = TetrisGame(seed=int(self.np_random.integers(2**31))).observation()
        obs = self.model.reset(np.asarray(board, np.uint8), seed=int(self.np_random.integers(2**31)))
        return obs.copy(), self._info()

    def step(self, action):
        obs = self.model.step(int(action))
        return obs.copy(), float(self.model.last_reward), self.model.game_over, False, self._info()

    def render(self):
        return render_board(self.model.board) if self.render_mode == "rgb_array" else None

    def _info(self) -> dict:
        return {"score": self.model.score, "lines": self.model.lines, "level": self.model.level}
