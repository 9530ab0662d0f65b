"""Real Skiing: ALE through gymnasium, palette frames, the app session at the console's pace."""
import numpy as np
import pygame
import pytest

pytest.importorskip("ale_py")

from neuralplay.app.skiing import SkiingSession  # noqa: E402
from neuralplay.games.skiing import (  # noqa: E402
    PALETTE, SKIER, HeldRandomPlayer, SkiingGame, TargetPlayer, downsample, skier_heading, skier_x,
    to_palette, to_rgb, upsample,
)


@pytest.fixture(scope="module")
def frames():
    game, player = SkiingGame(), HeldRandomPlayer(seed=0)
    game.reset(seed=0)
    out = []
    for _ in range(120):
        game.step(player.act(to_palette(game.frame)))
        out.append(game.frame.copy())
    return out


def test_palette_round_trip_is_exact_on_real_frames(frames):
    for frame in frames[::10]:
        idx = to_palette(frame)
        assert idx.max() < len(PALETTE)
        assert np.array_equal(to_rgb(idx), frame)


def test_half_resolution_keeps_the_skier(frames):
    small = downsample(to_palette(frames[-1]))
    assert small.shape == (105, 80)
    assert (small == SKIER).sum() >= 10 and skier_x(small) is not None


def test_same_seed_and_actions_replay_exactly():
    def run():
        game = SkiingGame()
        game.reset(seed=5)
        for a in [1, 1, 0, 2, 2, 2, 0, 1] * 10:
            game.step(a)
        return game.frame.copy()

    assert np.array_equal(run(), run())


def test_the_heading_is_read_off_the_sprite_as_the_keys_turn_it():
    game = SkiingGame()
    game.reset(seed=0)
    seen = [skier_heading(to_palette(game.frame))]
    for action in [1] * 12 + [2] * 24:  # right until sideways, then left until sideways
        game.step(action)
        seen.append(skier_heading(to_palette(game.frame)))
    right, left = seen[:13], seen[13:]
    assert seen[0] in (-1, 1) and right[-1] == 4 and left[-1] == -4
    assert right == sorted(right) and left == sorted(left, reverse=True)  # one pose at a time
    assert set(seen) == {-4, -3, -2, -1, 1, 2, 3, 4}
    assert skier_heading(upsample(downsample(to_palette(game.frame)))) is None


@pytest.mark.parametrize("steer, finishes", [("heading", True), ("direct", False)])
def test_the_gate_player_finishes_a_run_by_its_heading(steer, finishes):
    """Held toward the gate, the key turns the skier sideways until it stops; steering by the
    heading skis the whole run (20 gates) within 1,000 steps."""
    game, player = SkiingGame(), TargetPlayer("gates", seed=0, steer=steer)
    game.reset(seed=0)
    for _ in range(1000):
        game.step(player.act(to_palette(game.frame)))
        if game.over:
            break
    assert game.over == finishes


def test_session_steps_at_fifteen_per_second_and_held_keys_steer():
    session = SkiingSession("real", 0, pygame)
    for _ in range(60):  # one second of 60 Hz ticks, LEFT held
        session.update(1 / 60, [], {pygame.K_LEFT})
    assert session.steps == 15
    assert session._action({pygame.K_LEFT}) == 2 and session._action({pygame.K_RIGHT}) == 1
    assert session._action(set()) == 0
    pane = session.panes()[0]
    assert pane.image.shape == (210, 160, 3)


def test_the_autopilot_skis_on_past_the_end_of_a_run_and_max_steps_counts_every_step():
    from neuralplay.app.loop import LoopOptions, run
    from neuralplay.app.skiing import PANE_SIZE

    session = SkiingSession("real", 0, pygame, autopilot=True)
    pygame.init()
    run(session, PANE_SIZE, 1, LoopOptions(max_steps=800, speed=200.0))
    assert session.played >= 800 > session.steps  # a finished run restarted; --max-steps still ends it


def test_collect_records_how_its_players_steer(tmp_path):
    from neuralplay.errors import UserError
    from neuralplay.training.skiing_data import SkiingCollectConfig, collect, load_episode, still_steps

    actions = {}
    for steering in ("heading", "direct"):
        out = tmp_path / steering
        summary = collect(SkiingCollectConfig(out=str(out), episodes_per_policy=1, heldout_per_policy=0,
                                              max_steps=80, steering=steering), show_progress=False)
        assert summary["config"]["steering"] == steering
        episode = load_episode(out / "train" / "gates-1000.npz")
        assert summary["splits"]["train"]["gates"]["still_steps"] == still_steps(episode["frames"])
        actions[steering] = {p: load_episode(out / "train" / f"{p}-{s}.npz")["actions"]
                             for p, s in (("held-random", 0), ("gates", 1000))}
    assert np.array_equal(actions["heading"]["held-random"], actions["direct"]["held-random"])
    assert not np.array_equal(actions["heading"]["gates"], actions["direct"]["gates"])
    with pytest.raises(UserError, match="unknown steering"):
        collect(SkiingCollectConfig(out=str(tmp_path / "x"), steering="sideways"), show_progress=False)


def test_a_still_step_is_one_where_only_the_hud_changes():
    from neuralplay.games.skiing import HUD_ROWS
    from neuralplay.training.skiing_data import still_steps

    frames = np.zeros((4, 105, 80), np.uint8)
    frames[1, HUD_ROWS - 1, 0] = 1  # the timer ticks: still
    frames[2, HUD_ROWS, 0] = 1  # the slope changes: not still
    frames[3] = frames[2]  # nothing changes: still
    assert still_steps(frames) == 2
