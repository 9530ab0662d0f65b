"""Skier motion: the dynamics model conditioned on the skier's column, its velocity head,
the runtime that integrates the velocities, and a warm start that adds them."""
import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ale_py")

from neuralplay.games.skiing import FLAG, HUD_ROWS, SKIER, SLOPE_END, SNOW  # noqa: E402
from neuralplay.models.st_transformer import STConfig, STTransformer, skier_bins, skier_offset_bins  # noqa: E402
from neuralplay.runtime.skiing import (STARTS_FILE, TOLD_COLUMN_ERROR, UNKNOWN_COLUMN, NeuralSkiing,  # noqa: E402
                                      Sampling, SkierBox, graph_columns, load_starts, recent_motion, repaint,
                                      rows_moved, scroll_slope, skier_columns, stray_skier_pixels)
from neuralplay.runtime.skiing_course import UNSEEN, window  # noqa: E402
from neuralplay.training.skiing_dynamics import (SKIER_SHIFT_PX, export_graphs, load_model,  # noqa: E402
                                                 model_from_checkpoint, noisy_recent, shift_skier, shifted_context,
                                                 warm_start)
from tests.test_cli import neuralplay  # noqa: E402


def test_skier_columns_and_recent_motion():
    frames = np.zeros((3, 105, 80), np.uint8)
    frames[0, 24, 10:13] = SKIER  # columns 10, 11, 12
    frames[1, 20:26, 20] = SKIER
    assert np.array_equal(skier_columns(frames)[:2], [11.0, 20.0]) and np.isnan(skier_columns(frames)[2])
    track = np.array([10, 11, 12, 13, 14, 15, 17], np.float32)
    # (17 - 12) / 4 at the end: over up to 4 frames back
    np.testing.assert_allclose(recent_motion(track), [0, 1, 1, 1, 1, 1, 1.25])
    assert recent_motion(np.array([np.nan, 3, 4], np.float32))[1:].tolist() == [0, 0]  # unknown start: 0
    assert graph_columns(np.array([np.nan, 5.5])).tolist() == [UNKNOWN_COLUMN, 5.5]


def test_each_grid_column_sees_the_skiers_offset_from_its_centre():
    bins = skier_offset_bins(torch.tensor([4.0, UNKNOWN_COLUMN]), grid_cols=10)
    centre = skier_bins() // 2 - 1  # offset 0 (the bins run -16..16 in halves, then "unknown")
    assert bins[0, 0] == centre and bins[0, 1] == centre - 16  # 8 px to the left of column 1's centre
    assert bins[0, -1] == 0  # far away: clamped to the last offset bin
    assert (bins[1] == skier_bins() - 1).all()


def tiny_motion_config() -> STConfig:
    return STConfig(codebook_size=16, groups=2, grid=(14, 10), context=4, d_model=32, n_layers=2, n_heads=2,
                    d_ff=64, skier_motion=True)


def test_the_cache_gives_what_a_full_pass_gives_logits_and_velocities():
    torch.manual_seed(0)
    model = STTransformer(tiny_motion_config()).eval()
    torch.nn.init.normal_(model.skier_at.weight)  # it starts at zero; make it matter here
    tokens, actions = torch.randint(0, 16, (2, 4, 140)), torch.randint(0, 3, (2, 4))
    columns, recent = torch.rand(2, 4) * 80, torch.randn(2, 4)
    columns[0, 1] = UNKNOWN_COLUMN
    with torch.no_grad():
        cache, velocities = model.prefill(tokens[:, :-1], actions[:, :-1], columns[:, :-1], recent[:, -2])
        logits, _, next_velocities = model.step(tokens[:, -1], actions[:, -1], cache, columns[:, -1], recent[:, -1])
        states = model.states(tokens, actions, columns)
        moved = model.states(tokens, actions, columns + 8)
    torch.testing.assert_close(logits, model.logits(states[:, -1]), atol=1e-5, rtol=0)
    torch.testing.assert_close(velocities, model.velocities(states[:, -2], recent[:, -2]), atol=1e-5, rtol=0)
    torch.testing.assert_close(next_velocities, model.velocities(states[:, -1], recent[:, -1]), atol=1e-5, rtol=0)
    assert not torch.allclose(moved, states)  # the column is read


def test_the_velocity_head_learns_how_each_action_moves_the_skier():
    torch.manual_seed(0)
    model = STTransformer(tiny_motion_config())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    push = torch.tensor([0.0, 0.5, -0.5])  # NOOP stays, RIGHT and LEFT move half a pixel a step

    def clips():
        actions = torch.randint(0, 3, (16, 4))
        columns = 40 + torch.cumsum(torch.cat([torch.zeros(16, 1), push[actions[:, 1:]]], 1), 1)
        return torch.randint(0, 16, (16, 4, 140)), actions, columns

    errors = []
    for _ in range(150):
        tokens, actions, columns = clips()
        loss, stats = model.loss(tokens, actions, gen, columns=columns, recent=torch.zeros(16, 4))
        opt.zero_grad()
        loss.backward()
        opt.step()
        errors.append(stats["velocity_mae_px"].item())
    assert np.mean(errors[:10]) > 0.2 and np.mean(errors[-10:]) < 0.05


def test_shift_skier_moves_only_the_skier():
    frames = np.zeros((2, 105, 80), np.uint8)
    frames[:, 20:24, 40:43] = SKIER
    frames[:, 60, 10] = FLAG
    moved = shift_skier(frames, -3)
    assert skier_columns(moved).tolist() == [38.0, 38.0] and (moved[:, 60, 10] == FLAG).all()
    assert (shift_skier(frames, 39) == SKIER).sum() == 2 * 4  # cut off at the edge: one column of 4 left


def test_a_shifted_context_moves_the_pasts_skier_and_keeps_the_frame_predicted_real(tiny_skiing):
    from neuralplay.runtime.skiing_tokenizer import SkiingTokenizer
    from neuralplay.training.skiing_dynamics import sample_clips, tokenize_split

    tokenizer = SkiingTokenizer(tiny_skiing.tokenizer)
    episodes = tokenize_split(tiny_skiing.data, "train", tokenizer, with_frames=True)
    clips = sample_clips(episodes, 16, 4, 3, np.random.default_rng(0))
    shown, columns = shifted_context(clips, episodes, tokenizer, 0.5, np.random.default_rng(1))
    assert torch.equal(shown[:, -1], clips.tokens[:, -1]) and torch.equal(columns[:, -1], clips.columns[:, -1])
    moved = (columns[:, :-1] != clips.columns[:, :-1]).any(1)
    assert 0 < moved.sum() < 16
    for i in range(16):
        offset = columns[i, :-1] - clips.columns[i, :-1]
        if moved[i]:  # every past frame by the same few pixels, unless cut off at an edge
            assert 1 <= offset.abs().max() <= SKIER_SHIFT_PX
        else:
            assert torch.equal(shown[i], clips.tokens[i]) and not offset.any()


@pytest.fixture(scope="module")
def motion_export(tiny_skiing, tmp_path_factory):
    """The tiny stack's dynamics model warm-started with skier motion, its new parts made to
    matter, exported."""
    torch.manual_seed(0)
    model = STTransformer(replace(tiny_skiing.model.cfg, skier_motion=True))
    warm_start(model, tiny_skiing.dynamics)
    torch.nn.init.normal_(model.skier_at.weight)
    torch.nn.init.normal_(model.velocity[-1].weight)
    folder = tmp_path_factory.mktemp("motion")
    shutil.copy(tiny_skiing.dynamics / STARTS_FILE, folder / STARTS_FILE)
    meta = json.loads((tiny_skiing.dynamics / "skiing_dynamics_step.json").read_text())
    export_graphs(model.eval(), folder, {"config": meta["config"], "tokenizer": meta["tokenizer"]})
    return folder, model


def test_a_warm_start_with_skier_motion_begins_as_its_source(tiny_skiing):
    source = tiny_skiing.model.eval()
    model = STTransformer(replace(source.cfg, skier_motion=True)).eval()
    warm_start(model, tiny_skiing.dynamics)
    tokens = torch.randint(0, source.cfg.codebook_size, (2, source.cfg.context, source.cfg.tokens))
    actions = torch.randint(0, source.cfg.n_actions, (2, source.cfg.context))
    with torch.no_grad():
        torch.testing.assert_close(model(tokens, actions, torch.rand(2, source.cfg.context) * 80),
                                   source(tokens, actions))


def test_the_runtime_integrates_the_velocities_into_the_skiers_column(tiny_skiing, motion_export):
    folder, model = motion_export
    neural = NeuralSkiing(folder, tiny_skiing.tokenizer)
    start = load_starts(folder)[0]
    neural.reset(start.frames, start.actions_into_frames())
    columns = skier_columns(start.frames)
    np.testing.assert_allclose(neural.columns, columns[-5:])
    tokens = torch.from_numpy(neural.tokenizer.encode(start.frames).reshape(len(start.frames), -1))
    led = torch.tensor([[model.cfg.n_actions, *start.actions_into_frames()]])
    with torch.no_grad():
        _, velocities = model.prefill(tokens[None], led, torch.from_numpy(graph_columns(columns))[None],
                                      torch.from_numpy(recent_motion(columns)[-1:]))
    np.testing.assert_allclose(neural.velocities, velocities[0].numpy(), atol=1e-4)
    for action in (1, 2, 2, 0):
        before, moves = neural.columns[-1], neural.velocities.copy()
        neural.step(action)
        assert neural.columns[-1] == pytest.approx(np.clip(before + moves[action], 0, 79), abs=1e-5)
    assert len(neural.columns) == 5  # bounded, however long it runs
    assert not np.allclose(neural.velocities, moves)  # each finished frame gives the next ones
    read_back = model_from_checkpoint(folder)  # the new parts' weights go back where they came from
    for name, value in read_back.state_dict().items():
        torch.testing.assert_close(value, model.state_dict()[name], rtol=0, atol=0)


def test_with_skier_state_tables_the_runtime_carries_the_column_by_them(tiny_skiing, motion_export, tmp_path):
    from neuralplay.runtime.skier_state import STATE_FRAMES, SkierState, SkierTables
    from neuralplay.training.skiing_data import load_episode

    folder = tmp_path / "motion"
    shutil.copytree(motion_export[0], folder)
    result = neuralplay("train", "skier-state", "--data", str(tiny_skiing.data), "--out", str(folder))
    assert result.returncode == 0 and "skier_state.npz" in result.stdout, result.stderr
    neural = NeuralSkiing(folder, tiny_skiing.tokenizer, seed=0)
    assert neural.skier_state is not None and neural.frames_read == STATE_FRAMES
    episode = load_episode(sorted((tiny_skiing.data / "train").glob("*.npz"))[0])
    s = 20
    frames, actions = episode["frames"][s - 7:s + 1], episode["actions"][s - 7:s]
    reference = SkierState(SkierTables.load(folder / "skier_state.npz"), seed=0)
    reference.read(frames, actions)
    neural.reset(frames, actions)
    drawn, state = skier_columns(frames)[-1], reference.column
    assert neural.anchor == pytest.approx((drawn, state))
    for action in (1, 1, 2, 0, 2):
        neural.step(action)  # the column drawn moves as the state's does, at half ALE's width
        want = np.clip(drawn + (reference.step(action) - state) / 2, 0, 79)
        assert neural.columns[-1] == pytest.approx(want, abs=1e-4)
    assert NeuralSkiing(motion_export[0], tiny_skiing.tokenizer).skier_state is None  # no tables: the head's
    missing = neuralplay("train", "skier-state", "--data", str(tiny_skiing.data))
    assert missing.returncode != 0 and "needs --out FOLDER" in missing.stderr and "Traceback" not in missing.stderr


def test_stray_skier_pixels_are_those_outside_the_box_and_painted_as_their_neighbours():
    frame = np.zeros((105, 80), np.uint8)
    frame[22:26, 39:42] = SKIER  # the skier, at column 40
    frame[50:53, 60:63] = FLAG
    frame[51, 61] = SKIER  # a stray pixel within a flag, below the skier's rows
    frame[24, 47] = SKIER  # one on the skier's rows, 7 px to its side, on snow
    box = SkierBox(top=20, bottom=29, half_width=3.0)
    stray = stray_skier_pixels(frame, box, column=40.0)
    assert sorted(zip(*np.nonzero(stray))) == [(24, 47), (51, 61)]
    assert sorted(zip(*np.nonzero(stray_skier_pixels(frame, box, column=np.nan)))) == [(51, 61)]  # rows only
    painted = repaint(frame, stray)
    assert painted[51, 61] == FLAG and painted[24, 47] == 0
    assert np.array_equal(painted == SKIER, (frame == SKIER) & ~stray)


def test_scrolling_the_slope_moves_it_up_and_holds_the_hud_the_logo_and_the_skier():
    border, tree = 1, 4
    frame = np.full((105, 80), SNOW, np.uint8)
    frame[:, :4] = frame[:, 76:] = border
    frame[5, 30] = frame[95, 36:40] = border  # a HUD digit, the logo
    frame[40:44, 50] = FLAG
    frame[88, 20:27] = tree  # coming in at the bottom
    frame[20:24, 40] = SKIER
    frame[22, 41] = FLAG  # a flag beside the skier
    moved = scroll_slope(frame, 2)
    assert (moved[38:42, 50] == FLAG).all() and (moved[42:44, 50] == SNOW).all()
    assert (moved[86, 20:27] == tree).all() and (moved[88, 20:27] == SNOW).all()
    assert np.array_equal(moved == SKIER, frame == SKIER) and moved[20, 41] == FLAG
    assert (moved[SLOPE_END - 2:SLOPE_END, :4] == border).all()  # the rows come in with the borders
    assert np.array_equal(moved[:HUD_ROWS], frame[:HUD_ROWS]) and np.array_equal(moved[SLOPE_END:], frame[SLOPE_END:])
    assert np.array_equal(scroll_slope(frame, 0), frame)
    coming = np.full((2, 80), UNSEEN, np.uint8)
    coming[1, 30:33] = tree  # a tree of the course, the rest never seen
    course_in = scroll_slope(frame, 2, coming)
    assert (course_in[SLOPE_END - 1, 30:33] == tree).all() and (course_in[SLOPE_END - 1, 4:30] == SNOW).all()
    assert (course_in[SLOPE_END - 2:SLOPE_END, :4] == border).all()
    assert np.array_equal(np.delete(course_in, SLOPE_END - 1, 0), np.delete(moved, SLOPE_END - 1, 0))


def test_the_rows_moved_are_whole_rows_up_and_none_where_unknown():
    assert rows_moved(3.9, 4.1) == 1 and rows_moved(4.0, 4.9) == 0 and rows_moved(2.0, 4.5) == 2
    assert rows_moved(np.nan, 2.0) == 0 and rows_moved(5.0, 3.0) == 0 and rows_moved(0.0, 50.0) == 7


def with_skier_tables(tiny_skiing, motion_export, tmp_path) -> Path:
    """A copy of the skier-motion export with skier-state tables fit beside it by the CLI."""
    folder = tmp_path / "motion"
    shutil.copytree(motion_export[0], folder)
    assert neuralplay("train", "skier-state", "--data", str(tiny_skiing.data), "--out", str(folder)).returncode == 0
    return folder


def test_with_the_skiers_box_the_runtime_shows_and_caches_no_stray_skier_colour(tiny_skiing, motion_export,
                                                                                tmp_path):
    folder = with_skier_tables(tiny_skiing, motion_export, tmp_path)
    neural = NeuralSkiing(folder, tiny_skiing.tokenizer, seed=0)
    tables = neural.skier_state.tables
    assert neural.skier_box == SkierBox(*tables.rows, tables.reach + TOLD_COLUMN_ERROR)
    start = load_starts(folder)[0]
    neural.reset(start.frames, start.actions_into_frames())
    for action in (1, 2, 0, 0, 2):  # a real forward each step: whatever it draws, none strays
        frame = neural.step(action)
        assert not stray_skier_pixels(frame, neural.skier_box, neural.columns[-1]).any()
    drawn = neural.frame.copy()
    drawn[60:62, 5:7] = SKIER  # as a model drawing the skier's colour at a tree
    neural.frame, before = drawn, neural.tokens.copy()
    neural.keep_skier_to_box()
    assert not (neural.frame == SKIER)[60:62, 5:7].any()
    changed = np.nonzero(neural.tokens != before)[0]
    assert set(changed) <= {7 * 10 + 0}  # only the painted patch (row 7, column 0) is encoded again
    assert neural.tokens[70] == neural.tokenizer.encode(neural.frame[None]).reshape(-1)[70]
    left = NeuralSkiing(folder, tiny_skiing.tokenizer, sampling=Sampling(steps=None, skier_box=False))
    assert left.skier_box is None
    ask = ["eval", "skiing", "--json", "--data", str(tiny_skiing.data), "--checkpoint", str(folder),
           "--tokenizer", str(tiny_skiing.tokenizer), "--rollouts", "1"]
    rules = len(tables.falls) > 0  # the tiny replays may hold no fall to fit a rule to
    assert neural.falls is rules
    for flags, box, scroll, course, falls in (([], asdict(neural.skier_box), True, False, rules),
                                              (["--no-skier-box"], None, True, False, rules),
                                              (["--no-slope-scroll", "--course"], asdict(neural.skier_box), False,
                                               False, rules),  # no scroll, no course brought in
                                              (["--course"], asdict(neural.skier_box), True, True, rules),
                                              (["--no-falls"], asdict(neural.skier_box), True, False, False),
                                              (["--no-skier-hold"], asdict(neural.skier_box), True, False, rules)):
        result = neuralplay(*ask, *flags)
        assert result.returncode == 0, result.stderr
        facts = json.loads(result.stdout)
        assert facts["skier_box"] == box and facts["slope_scroll"] is scroll and facts["course"] is course
        assert facts["falls"] is falls and facts["skier_hold"] is (box is not None and "--no-skier-hold" not in flags)
        assert 0 <= facts["skier_held_share"] <= 1 and (facts["skier_hold"] or facts["skier_held_share"] == 0)
    replace(tables, rows=None).save(folder / "skier_state.npz")  # tables fit before the rows were
    assert NeuralSkiing(folder, tiny_skiing.tokenizer).skier_box is None


def test_a_frame_that_loses_the_skier_keeps_the_last_one_drawn_at_the_told_column(tiny_skiing, motion_export,
                                                                                tmp_path):
    folder = with_skier_tables(tiny_skiing, motion_export, tmp_path)
    neural = NeuralSkiing(folder, tiny_skiing.tokenizer, seed=0)
    assert neural.skier_hold
    start = load_starts(folder)[0]
    real = neural.reset(start.frames, start.actions_into_frames())
    column = neural.columns[-1]
    ys, xs = np.nonzero(real == SKIER)
    assert neural.skier_held == 0 and len(ys) and not np.isnan(column)
    lost = np.where(real == SKIER, SNOW, real)
    lost[ys[0], xs[0]] = SKIER  # a sliver of a skier: one pixel of it
    neural.frame, before = lost, neural.tokens.copy()
    neural.hold_skier(column + 2)
    shown = np.nonzero(neural.frame == SKIER)
    assert set(zip(*shown)) == set(zip(ys, np.clip(xs + 2, 0, real.shape[1] - 1))) | {(ys[0], xs[0])}
    assert neural.skier_held == 1
    patch_h, patch_w = -(-real.shape[0] // neural.grid[0]), real.shape[1] // neural.grid[1]
    drawn = set(shown[0] // patch_h * neural.grid[1] + shown[1] // patch_w)
    assert set(np.nonzero(neural.tokens != before)[0]) <= drawn  # only the patches drawn are encoded again
    neural.frame = real  # a frame that shows the skier is left as it is, and its skier kept
    neural.hold_skier(column)
    assert neural.frame is real and neural.skier_held == 1
    assert NeuralSkiing(folder, tiny_skiing.tokenizer, sampling=Sampling(steps=None, skier_hold=False)).skier_hold is False


def test_a_scroll_computes_the_last_frames_cache_entry_again_from_the_slope_moved(tiny_skiing, motion_export,
                                                                                   tmp_path):
    folder = with_skier_tables(tiny_skiing, motion_export, tmp_path)
    neural = NeuralSkiing(folder, tiny_skiing.tokenizer, seed=0, sampling=Sampling(steps=None, course=True))
    assert neural.slope_scroll and neural.decoding["slope_scroll"] and neural.decoding["course"]
    start = load_starts(folder)[0]
    neural.reset(start.frames, start.actions_into_frames())
    assert neural.scroll_cached_frame(2) is neural.cache  # the last frame is real, read whole by the prefill
    neural.step(0)
    cache = neural.cache
    assert neural.scroll_cached_frame(0) is cache
    assert neural.course is not None and neural.course_at is not None  # the start found on the course
    assert (neural.skier_state.course_at is not None) is neural.falls  # placed there where it can fall
    at = neural.course_at
    coming = window(neural.course, at + 4, SLOPE_END - 2, SLOPE_END)
    tokens = neural.tokenizer.encode(scroll_slope(neural.frame, 2, coming)[None]).reshape(1, -1)
    entry = neural._run({**neural.cached_with, "tokens": tokens})[1]
    scrolled = neural.scroll_cached_frame(2)
    assert neural.course_at == at + 4  # two rows at 105x80, four down the course
    np.testing.assert_array_equal(scrolled[:, :, :, :, -1:], entry)  # (layers, k/v, tokens, heads, frames, dims)
    np.testing.assert_array_equal(scrolled[:, :, :, :, :-1], cache[:, :, :, :, :-1])
    assert not np.array_equal(scrolled, cache)
    assert scrolled.shape == cache.shape and neural.step(1).shape == (105, 80)  # the context stays bounded
    still = NeuralSkiing(folder, tiny_skiing.tokenizer, sampling=Sampling(steps=None, slope_scroll=False))
    assert not still.slope_scroll and still.course is None
    bare = NeuralSkiing(folder, tiny_skiing.tokenizer)  # by default bare snow comes in
    bare.reset(start.frames, start.actions_into_frames())
    assert bare.slope_scroll and bare.course is None and bare.course_at is None and not bare.decoding["course"]


def test_train_with_skier_motion_from_the_cli(tiny_skiing, tmp_path):
    run = tmp_path / "run"
    result = neuralplay("train", "skiing-dynamics", "--data", str(tiny_skiing.data), "--run", str(run),
                        "--tokenizer", str(tiny_skiing.tokenizer), "--init-from", str(tiny_skiing.dynamics),
                        "--skier-motion", "--shifted-context", "0.5", "--fresh-lr-scale", "10", "--recent-noise", "0.5",
                        "--steps", "2", "--batch-size", "2", "--threads", "1")
    assert result.returncode == 0, result.stderr
    model, config = load_model(run)
    assert model.cfg.skier_motion and config["skier_motion"] and config["shifted_context"] == 0.5
    assert config["recent_noise"] == 0.5
    quiet = tmp_path / "quiet"  # the same run without the noise: the velocity head learns otherwise
    result = neuralplay("train", "skiing-dynamics", "--data", str(tiny_skiing.data), "--run", str(quiet),
                        "--tokenizer", str(tiny_skiing.tokenizer), "--init-from", str(tiny_skiing.dynamics),
                        "--skier-motion", "--shifted-context", "0.5", "--fresh-lr-scale", "10",
                        "--steps", "2", "--batch-size", "2", "--threads", "1")
    assert result.returncode == 0, result.stderr
    assert not torch.equal(load_model(quiet)[0].recent.weight, model.recent.weight)
    fresh = set(config["fresh_parameters"])  # what the source lacks learns at 10 x --lr
    assert {"skier_at.weight", "velocity.0.weight", "recent.weight"} <= fresh
    assert not any(name.startswith(("blocks.", "token.", "head.")) for name in fresh)
    result = neuralplay("export", "skiing-dynamics", "--run", str(run), "--data", str(tiny_skiing.data),
                        "--tokenizer", str(tiny_skiing.tokenizer), "--out", str(tmp_path / "out"),
                        "--maskgit-steps", "1")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "out" / "skiing_dynamics_step.json").read_text())["metrics"]
    assert "skier_persistence" in metrics


def test_recent_noise_is_for_skier_motion_models_only(tiny_skiing, tmp_path):
    args = ("train", "skiing-dynamics", "--data", str(tiny_skiing.data), "--run", str(tmp_path / "run"),
            "--tokenizer", str(tiny_skiing.tokenizer), "--steps", "1", "--batch-size", "2", "--threads", "1")
    for flags, says in ((("--recent-noise", "-1"), "0 or more"), (("--recent-noise", "nan"), "0 or more"),
                        (("--recent-noise", "0.5"), "--skier-motion")):
        result = neuralplay(*args, *flags)
        assert result.returncode != 0 and says in result.stderr and "Traceback" not in result.stderr


def test_noisy_recent_adds_seeded_noise_of_the_size_asked():
    recent = torch.zeros(64, 8)
    assert noisy_recent(recent, 0.0, torch.Generator().manual_seed(0)) is recent
    noisy = noisy_recent(recent, 0.5, torch.Generator().manual_seed(0))
    assert noisy.std().item() == pytest.approx(0.5, rel=0.1)
    torch.testing.assert_close(noisy, noisy_recent(recent, 0.5, torch.Generator().manual_seed(0)))


def test_a_run_saved_before_the_optimiser_groups_resumes(tiny_skiing, tmp_path):
    run = tmp_path / "run"
    args = ("train", "skiing-dynamics", "--data", str(tiny_skiing.data), "--run", str(run), "--tokenizer",
            str(tiny_skiing.tokenizer), "--batch-size", "2", "--threads", "1")
    assert neuralplay(*args, "--steps", "1").returncode == 0
    # As such a run was saved: one parameter group, no fresh_parameters in its config.
    state = torch.load(run / "ckpt.pt", weights_only=True)
    groups = state["opt"]["param_groups"]
    state["opt"]["param_groups"] = [{**{k: v for k, v in groups[0].items() if k != "scale"},
                                     "params": [p for g in groups for p in g["params"]]}]
    torch.save(state, run / "ckpt.pt")
    config = json.loads((run / "config.json").read_text())
    del config["fresh_parameters"], config["fresh_lr_scale"]
    (run / "config.json").write_text(json.dumps(config))
    result = neuralplay(*args, "--steps", "2", "--resume")
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "metrics.json").read_text())["step"] == 2


def skier_motion_tool():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("skier_motion_tool",
                                                  Path(__file__).parent.parent / "tools" / "skier_motion.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_the_recent_motion_the_head_reads_can_be_given(tiny_skiing, motion_export):
    tool = skier_motion_tool()
    folder, model = motion_export
    neural = tool.ReadsGivenRecent(folder, tiny_skiing.tokenizer)
    start = load_starts(folder)[0]
    neural.reset(start.frames, start.actions_into_frames())
    neural.given = np.array([3.0], np.float32)  # the step graph's velocities follow the recent motion fed
    neural.step(1)
    told = neural.velocities.copy()
    neural.reset(start.frames, start.actions_into_frames())
    neural.given = None
    neural.step(1)
    assert not np.allclose(told, neural.velocities)
    np.testing.assert_allclose(neural.recent(), recent_motion(neural.columns)[-1:])


def test_the_drawing_ceiling_and_the_feedback_on_held_out_rollouts(tiny_skiing, motion_export):
    from neuralplay.training.skiing_data import load_episode
    from neuralplay.training.skiing_dynamics_eval import heldout_paths, interleave_policies, plan_rollouts

    tool = skier_motion_tool()
    folder, _ = motion_export
    neural = tool.ReadsGivenRecent(folder, tiny_skiing.tokenizer)
    paths = heldout_paths(tiny_skiing.data / "heldout")
    episodes = [load_episode(p) for p in paths]
    plan, horizon = plan_rollouts([len(e["actions"]) for e in episodes], interleave_policies(paths), 2, 20,
                                  neural.context - 1, np.random.default_rng(0))
    ceiling = tool.drawing_ceiling(neural, episodes, plan, horizon)
    assert 0 <= ceiling["skier_persistence"] <= 1
    assert ceiling["skier_persistence"] + sum(ceiling["skier_misses"].values()) == pytest.approx(1)
    assert 0 <= ceiling["velocity_tracking"] <= 1
    by_source = {source: tool.persistence_reading_recent(neural, episodes, plan, horizon, source)
                 for source in ("own", "real", "none")}
    assert all(0 <= v <= 1 for v in by_source.values())
    from neuralplay.training.skiing_dynamics_eval import open_loop
    assert by_source["own"] == open_loop(neural, episodes, plan, horizon, [])[0]["skier_persistence"]  # the eval's
    assert neural.given is None  # left playing as the runtime does


def test_the_tool_prints_every_measurement(tiny_skiing, motion_export):
    import subprocess
    import sys
    from pathlib import Path

    folder, _ = motion_export
    tool = Path(__file__).parent.parent / "tools" / "skier_motion.py"
    args = [sys.executable, str(tool), "--checkpoint", str(folder), "--tokenizer", str(tiny_skiing.tokenizer),
            "--data", str(tiny_skiing.data), "--rollouts", "2", "--horizon", "10", "--samples", "2", "--threads", "1"]
    shown = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert shown.returncode == 0, shown.stderr
    assert "told ALE's column every step" in shown.stdout and "own columns / ALE's / none" in shown.stdout
    result = json.loads(subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=600).stdout)
    assert set(result["persistence_reading_recent"]) == {"own", "real", "none"}
    assert 0 <= result["told_real_column"]["skier_persistence"] <= 1
    missing = subprocess.run([*args[:2], "--checkpoint", str(tiny_skiing.dynamics), "--tokenizer",
                              str(tiny_skiing.tokenizer), "--data", str(tiny_skiing.data)],
                             capture_output=True, text=True, timeout=600)  # a model without skier motion
    assert missing.returncode == 1 and "no skier motion" in missing.stdout and "Traceback" not in missing.stderr
