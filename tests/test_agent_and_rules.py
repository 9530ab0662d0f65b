import numpy as np

from neuralplay.games.tetris import SPAWN_SHAPES, Event, TetrisGame, observation
from neuralplay.games.tetris_agent import HeuristicAgent, follows_rules, piece_of


def test_heuristic_agent_clears_lines_and_every_engine_step_follows_the_rules():
    game, agent = TetrisGame(seed=5), HeuristicAgent(seed=5)
    for _ in range(1500):
        obs = game.observation()
        event = agent.act(obs)
        result = game.step(event)
        assert result.game_over or follows_rules(obs, event, game.observation())
        if result.game_over:
            game.reset(6)
    assert game.lines >= 20


def test_rule_checker_rejects_wrong_boards():
    game = TetrisGame(seed=1)
    obs = game.observation()
    game.step(Event.LEFT)
    moved = game.observation()
    assert follows_rules(obs, Event.LEFT, moved)
    assert not follows_rules(obs, Event.RIGHT, moved)
    broken = moved.copy()
    broken[0, 21, 0] = 1  # a settled cell from nowhere
    assert not follows_rules(obs, Event.LEFT, broken)


def test_rule_checker_accepts_any_spawn_shape_and_nothing_else():
    empty = np.zeros((22, 10), bool)
    before = observation(empty, None)
    for shape in SPAWN_SHAPES.values():
        assert follows_rules(before, Event.NONE, observation(empty, shape))
    shifted = tuple((r + 1, c) for r, c in SPAWN_SHAPES["T"])
    assert not follows_rules(before, Event.NONE, observation(empty, shifted))


def test_piece_of_names_every_orientation():
    assert piece_of(SPAWN_SHAPES["L"]) == "L"
    assert piece_of(((0, 0), (1, 0), (2, 0), (3, 0))) == "I"
    assert piece_of(((0, 0), (0, 1), (5, 5), (6, 6))) is None
