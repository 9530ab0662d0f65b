"""Neural Tetris: the exported generator run by onnxruntime, with numpy only.

reset(obs) sets the board, step(event) asks the generator for the next board, sync(obs)
puts the neural board back onto a real one. The only randomness is the generator's noise,
drawn from the game's own seeded rng. Score, lines and level follow the real game's rules,
read off the model's boards.
"""
from __future__ import annotations

import numpy as np

from neuralplay.games.tetris import (
    COLS, PIECES, ROWS, SPAWN_SHAPES, Event, level_after, lines_cleared, observation, rows_dropped,
    spawn_blocked, step_reward,
)
from neuralplay.runtime.checkpoint import Checkpoint, load_checkpoint, onnx_session

GAME = "tetris"
MODEL_KIND = "tetris-gan-generator"
DEFAULT_CHECKPOINT = "tetris"
N_PIECES = len(PIECES)


def gumbel(rng: np.random.Generator) -> np.ndarray:
    u = rng.uniform(1e-9, 1 - 1e-9, size=(1, N_PIECES)).astype(np.float32)
    return -np.log(-np.log(u))


def gumbel_with_argmax(rng: np.random.Generator, piece: int) -> np.ndarray:
    """Gumbel noise whose largest component is `piece`: the noise given a known spawn."""
    g = gumbel(rng)
    top = int(g.argmax())
    g[0, [top, piece]] = g[0, [piece, top]]
    return g


class NeuralTetris:
    """The world model as a game: same observation (2, 22, 10) uint8 as the real engine."""

    def __init__(self, checkpoint: Checkpoint | str | None = None, seed: int | None = None,
                 threads: int = 1, start_level: int = 1):
        if not isinstance(checkpoint, Checkpoint):
            checkpoint = load_checkpoint(checkpoint, GAME, MODEL_KIND, DEFAULT_CHECKPOINT)
        self.checkpoint = checkpoint
        self.session = onnx_session(checkpoint.onnx_path, threads)
        self.rng = np.random.default_rng(seed)
        self.board = observation(np.zeros((ROWS, COLS), bool), SPAWN_SHAPES["T"])
        self._event = np.zeros(1, np.int64)
        self.start_level = start_level
        self.score = self.lines = self.last_reward = 0
        self.game_over = False

    @property
    def level(self) -> int:
        return level_after(self.start_level, self.lines)

    @property
    def identity(self) -> str:
        return self.checkpoint.identity

    def reset(self, obs: np.ndarray, seed: int | None = None) -> np.ndarray:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.score = self.lines = self.last_reward = 0
        return self.sync(obs)

    def sync(self, obs: np.ndarray) -> np.ndarray:
        self.board = np.asarray(obs, np.uint8).copy()
        self.game_over = spawn_blocked(self.board)
        return self.board

    def step(self, event: int, spawn_piece: int | None = None) -> np.ndarray:
        """The next board. `spawn_piece` fixes which piece a spawn brings (through the
        noise), as compare mode does to share the real game's piece sequence."""
        noise = gumbel(self.rng) if spawn_piece is None else gumbel_with_argmax(self.rng, spawn_piece)
        self._event[0] = event
        logits = self.session.run(None, {"board": self.board[None], "event": self._event,
                                         "noise": noise})[0]
        before, self.board = self.board, (logits[0] > 0).astype(np.uint8)
        lines = lines_cleared(before, self.board)
        self.last_reward = step_reward(Event(event), lines, rows_dropped(before, self.board, event),
                                       self.level)
        self.lines += lines
        self.score += self.last_reward
        self.game_over = spawn_blocked(self.board)
        return self.board
