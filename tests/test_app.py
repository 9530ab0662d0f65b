"""The pygame app under the dummy video driver: real keys posted as events, real surfaces."""
import numpy as np
import pygame
import pytest

from neuralplay.app.loop import LoopOptions, run
from neuralplay.app.tetris import PANE_SIZE, TetrisSession, mark_differences
from neuralplay.games.tetris import Event, split_observation
from neuralplay.runtime.tetris import NeuralTetris

TICK = 1 / 60


@pytest.fixture(scope="module")
def model():
    return NeuralTetris(None, seed=0)  # the shipped checkpoint


def test_keys_drive_the_real_engine():
    session = TetrisSession("real", 0, pygame)
    before = split_observation(session.real.observation())[1]
    session.update(TICK, [pygame.K_LEFT], {pygame.K_LEFT})
    after = split_observation(session.real.observation())[1]
    assert [c for _, c in after] == [c - 1 for _, c in before]
    session.update(TICK, [pygame.K_SPACE], set())
    assert session.real.cells is None  # hard drop locked the piece
    for _ in range(10):  # the entry delay passes, the next piece comes in
        session.update(TICK, [], set())
    assert session.real.cells is not None


def test_held_key_auto_repeats():
    session = TetrisSession("real", 0, pygame)
    col0 = min(c for _, c in session.real.cells)
    session.update(TICK, [pygame.K_RIGHT], {pygame.K_RIGHT})
    for _ in range(30):  # half a second held
        session.update(TICK, [], {pygame.K_RIGHT})
    assert min(c for _, c in session.real.cells) >= col0 + 3


def test_compare_mode_steps_both_marks_differences_and_resyncs(model):
    session = TetrisSession("compare", 0, pygame, model)
    for key in (pygame.K_LEFT, pygame.K_UP, pygame.K_SPACE):
        session.update(TICK, [key], set())
    assert session.agreement.steps == 3 and session.steps == 3
    panes = session.panes()
    assert [p.title for p in panes] == ["Real", "Neural"]
    model.board[0, 21, :] ^= 1  # make them differ on purpose
    image = mark_differences(panes[1].image, model.board, session.real.observation(), 24)
    assert (image == (255, 40, 40)).all(axis=2).any()
    assert session.resync()
    assert np.array_equal(model.board, session.real.observation())


def test_compare_mode_neural_score_follows_the_real_games():
    """The same boards score the same: lines times the level and the drop points."""
    model = NeuralTetris(None, seed=0, start_level=3)
    session = TetrisSession("compare", 4, pygame, model, autopilot=True, level=3)
    for _ in range(1200):
        session.update(TICK, [], set())
    assert session.real.lines >= 1 and session.agreement.line().startswith("agreement: cells now 100.0%")
    assert (model.score, model.lines, model.level) == (session.real.score, session.real.lines,
                                                        session.real.level)


def test_window_runs_headless_with_autopilot_and_overlays(model):
    session = TetrisSession("neural", 0, pygame, model, autopilot=True)
    pygame.init()
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_h))
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_h))
    run(session, PANE_SIZE, 1, LoopOptions(max_steps=40, speed=30.0))
    assert session.steps >= 40


def test_escape_quits():
    session = TetrisSession("real", 0, pygame)
    pygame.init()
    pygame.display.init()
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE))
    run(session, PANE_SIZE, 1, LoopOptions(max_steps=None))
    assert session.steps < 5


def test_autopilot_controls_emit_game_events():
    session = TetrisSession("real", 1, pygame, autopilot=True)
    for _ in range(600):
        session.update(TICK, [], set())
    assert session.steps > 50 and session.real.score > 0
    assert Event.HARD_DROP in Event
