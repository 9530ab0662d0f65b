"""The real Tetris engine as a gymnasium env: `neuralplay/Tetris-v0`."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from neuralplay.games.tetris import COLS, ROWS, Event, TetrisGame
from neuralplay.games.tetris_render import render_board

OBSERVATION_SPACE = spaces.Box(0, 1, (2, ROWS, COLS), np.uint8)
ACTION_SPACE = spaces.Discrete(len(Event))


class TetrisEnv(gym.Env):
    """Observation: (2, 22, 10) uint8, channel 0 settled cells, channel 1 the falling piece.
    Actions: Event (0 gravity, 1 left, 2 right, 3 rotate, 4 soft drop, 5 hard drop).
    Reward: the game's score gained by the step. Terminates at game over."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 60}

    def __init__(self, render_mode: str | None = None, start_level: int = 1):
        self.observation_space = OBSERVATION_SPACE
        self.action_space = ACTION_SPACE
        self.render_mode = render_mode
        self.game = TetrisGame(seed=0, start_level=start_level)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs = self.game.reset(int(self.np_random.integers(2**31)))
        return obs, self._info()

    def step(self, action):
        result = self.game.step(Event(int(action)))
        info = self._info() | {"lines_cleared": result.lines, "spawned": result.spawned}
        return self.game.observation(), float(result.reward), result.game_over, False, info

    def render(self):
        if self.render_mode == "rgb_array":
            return render_board(self.game.observation())
        return None

    def _info(self) -> dict:
        g = self.game
        return {"score": g.score, "lines": g.lines, "level": g.level, "next_piece": g.next_piece}
