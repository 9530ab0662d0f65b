import numpy as np
import pytest

from neuralplay.games.tetris import SPAWN_SHAPES, observation
from neuralplay.training.tetris_data import simulate
from neuralplay.training.tetris_metrics import board_metrics, closed_loop, evaluate_set


@pytest.fixture(scope="module")
def data():
    return simulate("player", 3000, seed=11)


def test_perfect_predictions_score_one(data):
    m = evaluate_set(data.x, data.event, data.y, data.y)
    for key in ("cell_accuracy", "board_accuracy", "board_plausibility", "spawn_recall",
                "spawn_precision", "spawn_validity"):
        assert m[key] == 1.0, key
    assert all(v in (None, 1.0) for v in m["board_accuracy_nonspawn_by_event"].values())
    assert m["spawn_diversity"] > 0.9


def test_a_different_valid_spawn_is_plausible_but_not_accurate():
    empty = np.zeros((22, 10), bool)
    x = observation(empty, None)[None]
    y = observation(empty, SPAWN_SHAPES["T"])[None]
    p = observation(empty, SPAWN_SHAPES["I"])[None]
    m = board_metrics(x, y, p)
    assert m["board_accuracy"] == 0.0
    assert m["board_plausibility"] == 1.0 and m["spawn_validity"] == 1.0
    assert m["spawn_diversity"] == pytest.approx(1 / 7)


def test_an_invalid_spawn_counts_against_validity():
    empty = np.zeros((22, 10), bool)
    x = observation(empty, None)[None]
    y = observation(empty, SPAWN_SHAPES["T"])[None]
    p = observation(empty, ((0, 3), (0, 4), (1, 4)))[None]  # three cells
    m = board_metrics(x, y, p)
    assert m["spawn_recall"] == 1.0 and m["spawn_validity"] == 0.0 and m["board_plausibility"] == 0.0


def test_closed_loop_of_the_real_rules_is_fully_consistent():
    from neuralplay.games.tetris import SPAWN_SHAPES as shapes, Event, apply_event, observation, split_observation

    rng = np.random.default_rng(0)
    names = list(shapes)

    def engine(boards, events):  # the real rules as a "model"
        out = []
        for b, e in zip(boards, events):
            settled, cells = split_observation(b)
            if not cells:
                out.append(observation(settled, shapes[names[rng.integers(7)]]))
            else:
                move = apply_event(settled, cells, Event(int(e)))
                out.append(observation(move.settled, move.cells))
        return np.stack(out)

    result = closed_loop(engine, steps=600, games=4)
    assert result["closed_loop_steps"] == 600
    assert result["closed_loop_rule_consistency"] == 1.0


def test_closed_loop_catches_a_model_that_ignores_the_keys():
    result = closed_loop(lambda boards, events: boards.copy(), steps=300, games=3)
    assert result["closed_loop_rule_consistency"] < 0.9
