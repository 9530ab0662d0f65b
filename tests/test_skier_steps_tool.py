"""tools/skier_steps.py on hand-made frames: the skier's track, the lookup's keys and its scores."""
import importlib.util
from pathlib import Path

import numpy as np

from neuralplay.games.skiing import SKIER

spec = importlib.util.spec_from_file_location("skier_steps", Path(__file__).parent.parent / "tools" / "skier_steps.py")
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)


def frames_of(columns: list[int], wide: list[bool]) -> np.ndarray:
    """A skier at each column, two pixels wide where `wide` (a turned pose), else one."""
    frames = np.zeros((len(columns), 105, 80), np.uint8)
    for t, (c, w) in enumerate(zip(columns, wide)):
        frames[t, 30:34, c:c + (2 if w else 1)] = SKIER
    return frames


def test_the_track_gives_the_column_and_the_pose():
    frames = frames_of([5, 7], [False, True])
    frames[0, 50, 60] = 3  # another colour is not the skier
    (left0, pose0), (left1, pose1) = tool.skier_track(frames)
    assert (left0, left1) == (5, 7) and pose0 != pose1
    assert tool.skier_track(np.zeros((1, 105, 80), np.uint8)) == [None]


def test_a_turned_skier_that_moves_is_predicted_from_its_pose():
    # turned (wide): one column right every step; straight: stands
    columns, wide = [10], [True]
    for t in range(1, 40):
        turned = (t // 10) % 2 == 0
        columns.append(columns[-1] + (1 if wide[-1] else 0))
        wide.append(turned)
    frames, actions = frames_of(columns, wide), np.zeros(39, np.int64)
    examples = tool.step_examples(tool.skier_track(frames), actions, history=2)
    assert len(examples) == 40 - 1 - 2
    assert all(len(key[2]) == 2 for key, _ in examples)
    key, step = examples[0]  # t = 2: the steps into frames 1 and 2 are known, the one into 3 is the answer
    assert key[2] == (columns[1] - columns[0], columns[2] - columns[1]) and step == columns[3] - columns[2]
    scores = tool.lookup_scores(examples, examples)
    assert scores["known_share"] == 1.0 and scores["moving_steps"] > 0
    assert scores["right"] == 1.0 and scores["moving_right"] == 1.0
    stand = [(key, 0) for key, _ in examples]  # a table that has only seen a standing skier
    assert tool.lookup_scores(stand, examples)["moving_right"] == 0.0
