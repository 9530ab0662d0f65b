import numpy as np
import pytest

from neuralplay.games.tetris import (
    COLS, ROWS, SPAWN_SHAPES, Event, TetrisGame, apply_event, lines_cleared, observation,
    rotate_cells, rows_dropped, split_observation, step_reward,
)
from neuralplay.games.tetris_agent import HeuristicAgent

EMPTY = np.zeros((ROWS, COLS), bool)

# DESIGN.md's spawn shapes, written out independently of the engine's table.
DESIGN_SHAPES = {
    "I": ["0001111000", "0000000000"],
    "O": ["0000110000", "0000110000"],
    "J": ["0001000000", "0001110000"],
    "T": ["0001110000", "0000100000"],
    "S": ["0000110000", "0001100000"],
    "L": ["0000010000", "0001110000"],
    "Z": ["0001100000", "0000110000"],
}


@pytest.mark.parametrize("piece", list(DESIGN_SHAPES))
def test_spawn_shapes_are_the_seed_projects(piece):
    cells = {(r, c) for r, row in enumerate(DESIGN_SHAPES[piece]) for c, ch in enumerate(row) if ch == "1"}
    assert set(SPAWN_SHAPES[piece]) == cells


@pytest.mark.parametrize("piece", list(SPAWN_SHAPES))
def test_four_rotations_return_the_piece(piece):
    cells = tuple((r + 5, c) for r, c in SPAWN_SHAPES[piece])
    turned = cells
    for _ in range(4):
        turned = rotate_cells(turned)
    assert sorted(turned) == sorted(cells)


def test_rotation_kicks_off_the_wall():
    vertical_i = ((5, 0), (6, 0), (7, 0), (8, 0))
    move = apply_event(EMPTY, vertical_i, Event.ROTATE)
    assert all(0 <= c < COLS for _, c in move.cells)
    assert len({r for r, _ in move.cells}) == 1  # horizontal now


def test_rotation_blocked_everywhere_keeps_the_piece():
    settled = np.ones((ROWS, COLS), bool)
    cells = ((10, 4), (10, 5), (11, 4), (11, 5))
    settled[10:12, 4:6] = False
    i_piece = ((10, 4), (10, 5), (10, 6), (10, 7))
    settled[10, 4:8] = False
    assert apply_event(settled, i_piece, Event.ROTATE).cells == i_piece
    assert apply_event(EMPTY, cells, Event.ROTATE).cells == tuple(sorted(cells))  # O is symmetric


def test_moves_stop_at_walls_and_blocks():
    left_edge = ((0, 0), (0, 1), (0, 2), (0, 3))
    assert apply_event(EMPTY, left_edge, Event.LEFT).cells == left_edge
    assert apply_event(EMPTY, left_edge, Event.RIGHT).cells == ((0, 1), (0, 2), (0, 3), (0, 4))


def test_hard_drop_lands_on_the_stack_and_locks():
    settled = EMPTY.copy()
    settled[15, 4] = True
    move = apply_event(settled, SPAWN_SHAPES["I"], Event.HARD_DROP)
    assert move.cells is None and move.rows_dropped == 14
    assert move.settled[14, 3:7].all()


def test_gravity_locks_a_resting_piece_and_clears_lines():
    settled = EMPTY.copy()
    settled[21, :] = True
    settled[21, 3:7] = False
    settled[5, 0] = True  # something above the cleared row shifts down
    resting = ((21, 3), (21, 4), (21, 5), (21, 6))
    move = apply_event(settled, resting, Event.NONE)
    assert move.cells is None and move.lines == 1
    assert move.settled.sum() == 1 and move.settled[6, 0]


def test_lines_cleared_is_read_off_the_boards():
    settled = EMPTY.copy()
    settled[21, :] = True
    settled[21, 3:7] = False
    before = observation(settled, ((21, 3), (21, 4), (21, 5), (21, 6)))
    after = observation(apply_event(settled, ((21, 3), (21, 4), (21, 5), (21, 6)), Event.NONE).settled, None)
    assert lines_cleared(before, after) == 1


def test_the_step_after_a_lock_spawns_the_next_piece():
    game = TetrisGame(seed=3)
    expected_next = game.next_piece
    assert game.step(Event.HARD_DROP).locked
    _, cells = split_observation(game.observation())
    assert cells == ()
    result = game.step(Event.NONE)
    assert result.spawned == expected_next
    assert split_observation(game.observation())[1] == SPAWN_SHAPES[expected_next]


def test_seeded_games_repeat_and_differ():
    def pieces(seed):
        game = TetrisGame(seed=seed)
        out = [game.piece]
        for i in range(8):  # spread pieces over the columns so that the game goes on
            for _ in range(4):
                game.step(Event.LEFT if i % 2 else Event.RIGHT)
            game.step(Event.HARD_DROP)
            out.append(game.step(Event.NONE).spawned)
        return out

    assert pieces(1) == pieces(1)
    assert pieces(1) != pieces(2)


def test_game_over_when_the_spawn_is_blocked():
    game = TetrisGame(seed=0)
    settled = EMPTY.copy()
    settled[1:, :] = True
    settled[1:, 0] = False  # no full rows, but the spawn zone's row 1 is blocked
    game.set_board(settled, None)
    assert game.step(Event.NONE).game_over


def test_score_lines_and_level():
    game = TetrisGame(seed=0, start_level=1)
    settled = EMPTY.copy()
    settled[18:22, :] = True
    settled[18:22, 0] = False
    game.set_board(settled, ((0, 0), (1, 0), (2, 0), (3, 0)))
    result = game.step(Event.HARD_DROP)
    assert result.lines == 4 and game.lines == 4
    assert game.score == 800 + 2 * 18
    game.lines = 10
    assert game.level == 2


@pytest.mark.parametrize("drop", ["hard", "soft"])
def test_score_read_off_the_boards_is_the_engines(drop):
    """What the neural game scores from two boards and the event equals the engine's reward."""
    game = TetrisGame(seed=3, start_level=2)
    agent = HeuristicAgent(drop=drop, epsilon=0.05, seed=3)
    scored, top_level = {e: 0 for e in Event}, 0
    for step in range(2000):
        before, level = game.observation(), game.level
        top_level = max(top_level, level)
        event = agent.act(before)
        result = game.step(event)
        if result.game_over:
            game.reset(seed=step)
            continue
        after = game.observation()
        reward = step_reward(event, lines_cleared(before, after), rows_dropped(before, after, event), level)
        assert reward == result.reward, (event, reward, result.reward)
        scored[event] += result.reward
    finish = Event.HARD_DROP if drop == "hard" else Event.SOFT_DROP
    assert top_level >= 3 and scored[finish] > 0 and scored[Event.NONE] == 0
