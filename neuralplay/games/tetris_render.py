"""Tetris boards as RGB pictures, with numpy only (the gymnasium envs and the app share it)."""
from __future__ import annotations

import numpy as np

from neuralplay.games.tetris_agent import piece_of
from neuralplay.games.tetris import split_observation

BACKGROUND = (18, 18, 28)
GRID = (34, 34, 48)
SETTLED = (120, 124, 140)
PIECE_COLOURS = {
    "I": (0, 200, 220), "O": (230, 210, 0), "J": (40, 90, 230), "T": (170, 60, 210),
    "S": (40, 200, 80), "L": (240, 140, 20), "Z": (220, 40, 50),
}
UNKNOWN_PIECE = (255, 255, 255)  # falling cells that are not a tetromino (a model's mistake)


def falling_colour(obs: np.ndarray) -> tuple[int, int, int]:
    _, cells = split_observation(obs)
    name = piece_of(cells)
    return PIECE_COLOURS.get(name or "", UNKNOWN_PIECE)


def render_board(obs: np.ndarray, cell: int = 16) -> np.ndarray:
    """(2, R, C) observation -> (R*cell, C*cell, 3) uint8; a one-pixel grid between cells."""
    rows, cols = obs.shape[1:]
    colour = np.zeros((rows, cols, 3), np.uint8)
    colour[:] = BACKGROUND
    colour[obs[0].astype(bool)] = SETTLED
    colour[obs[1].astype(bool)] = falling_colour(obs)
    image = np.repeat(np.repeat(colour, cell, axis=0), cell, axis=1)
    image[::cell, :] = np.where(image[::cell, :] == BACKGROUND, GRID, image[::cell, :])
    image[:, ::cell] = np.where(image[:, ::cell] == BACKGROUND, GRID, image[:, ::cell])
    return image
