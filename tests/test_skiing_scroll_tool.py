"""tools/skiing_scroll.py on hand-made frames: the slope's shift is found, the HUD, the logo
band and the skier stay put."""
import importlib.util
from pathlib import Path

import numpy as np

from neuralplay.games.skiing import SKIER

spec = importlib.util.spec_from_file_location("skiing_scroll", Path(__file__).parent.parent / "tools" / "skiing_scroll.py")
scroll = importlib.util.module_from_spec(spec)
spec.loader.exec_module(scroll)

TREE = 3


def frame_with_tree(top: int) -> np.ndarray:
    frame = np.zeros((105, 80), np.uint8)
    frame[2:6, 30:40] = 1  # the HUD
    frame[95:98, 36:44] = 1  # the logo under the slope
    frame[30:36, 40:44] = SKIER
    frame[top:top + 8, 10:16] = TREE
    return frame


def test_the_slope_moves_and_the_rest_stays():
    before, after = frame_with_tree(60), frame_with_tree(58)
    shifts = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)]
    assert scroll.best_shift(before, after, shifts) == (2, 0)
    assert np.array_equal(scroll.shifted(before, 2, 0), after)
    assert np.array_equal(scroll.shifted(before, 0, 0), before)
    moved = scroll.shifted(before, 0, 3)
    assert (moved[60:68, 13:19] == TREE).all() and (moved[30:36, 40:44] == SKIER).all()
