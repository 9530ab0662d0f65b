"""The skier's state: tables fit from ALE replays (training.skier_tables), read off real frames
and stepped by the keys (runtime.skier_state), and the runtime's column carried by them."""
import json
from dataclasses import replace

import numpy as np
import pytest

from neuralplay.errors import UserError
from neuralplay.games.skiing import SKIER
from neuralplay.runtime.skier_state import (COLUMN, FRAMES_PER_STEP, STATE_BYTES, SUBPIXELS, TABLES_FILE,
                                            SkierState, SkierTables, slope_shift, sprite)

pytest.importorskip("ale_py")

from neuralplay.training.skier_tables import (MOST_ROWS_A_FRAME, fit_tables, position, replay,  # noqa: E402
                                              rows_scrolled, train_skier_state)


def test_a_sprite_is_its_mask_and_leftmost_column():
    frame = np.zeros((105, 80), np.uint8)
    frame[20:23, 10:12] = SKIER
    key, left = sprite(frame)
    assert left == 10 and key[:2] == (3, 2)
    assert sprite(np.zeros((105, 80), np.uint8))[0] is None


def test_the_reach_is_the_farthest_a_sprites_pixel_lies_from_its_mean_column():
    frame = np.zeros((105, 80), np.uint8)
    frame[20, 10:13] = SKIER
    frame[21, 12:14] = SKIER  # columns 10, 11, 12, 12, 13: mean 11.6, and 10 lies 1.6 from it
    wide, _ = sprite(frame)
    narrow, _ = sprite(np.where(np.arange(80) == 30, SKIER, 0).astype(np.uint8)[None].repeat(105, 0))
    tables = SkierTables(*(np.zeros(1),) * 7, walls=(0, 1), states=np.zeros((1, 5)), sprites={narrow: (), wide: ()})
    assert tables.reach == pytest.approx(1.6)


def test_the_slopes_shift_is_the_rows_it_moved_up():
    rng = np.random.default_rng(0)
    before = np.zeros((105, 80), np.uint8)
    before[14:89] = rng.choice([0, 0, 0, 2, 6], (75, 80))
    after = before.copy()
    after[14:89 - 3] = before[17:89]  # the slope moved up 3 rows
    after[89 - 3:89] = 0
    assert slope_shift(before, after) == 3 and slope_shift(before, before) == 0


def test_the_rows_scrolled_follow_the_objects_when_one_leaves_the_top():
    objects = np.array([[200, 150, 100, 50],
                        [201, 151, 101, 51],  # all 1 row on
                        [151, 102, 52, 10],  # the first left: the rest a place down the list, 1 row on
                        [151, 102, 52, 10],
                        [60, 20, 0, 0]])  # two left at once: neither comparison explains it
    assert rows_scrolled(objects).tolist() == [1, 1, 0, -1]


def test_the_downhill_motion_fit_from_replays_is_a_few_rows_a_frame_at_most(tables):
    assert tables.downhill.min() >= 0 and tables.downhill.max() < MOST_ROWS_A_FRAME * SUBPIXELS


@pytest.fixture(scope="module")
def replayed(tiny_skiing):
    return [replay(p) for p in sorted((tiny_skiing.data / "train").glob("*.npz"))]


@pytest.fixture(scope="module")
def tables(replayed):
    return fit_tables(replayed)


def true_candidate(rams: np.ndarray, t: int) -> np.ndarray:
    """ALE's state at the console frame stored frame t shows, as one candidate."""
    shown = rams[FRAMES_PER_STEP * t - 1]
    return np.array([[*shown[list(STATE_BYTES)], position(shown), 0]])


def test_stepping_many_candidates_gives_each_what_stepping_it_alone_gives(replayed, tables):
    rams, _, _ = replayed[0]
    c = np.concatenate([true_candidate(rams, t) for t in (3, 20, 40, 60)])
    assert len(np.unique(c, axis=0)) == 4
    together = tables.step(c, 1)
    assert all((together[i] == tables.step(c[i:i + 1], 1)[0]).all() for i in range(4))


def test_the_state_read_off_a_context_follows_alees_skier(replayed, tables):
    rams, _, episode = replayed[0]
    state = SkierState(tables, seed=0)
    start = 12
    assert state.read(episode["frames"][start - 7:start + 1], episode["actions"][start - 7:start])
    true = true_candidate(rams, start)[0]
    assert 0 < len(state.candidates) and (state.candidates[:, 1] == true[1]).any()  # ALE's heading among them
    assert abs(state.column - true[COLUMN] / 32) <= 6
    for k in range(1, 30):  # the keys alone carry it on
        column = state.step(int(episode["actions"][start + k - 1]))
        assert abs(column - rams[FRAMES_PER_STEP * (start + k) - 1, 25]) <= 6
    assert len(state.candidates) <= 2000
    with pytest.raises(ValueError, match="take 7 actions"):
        state.read(episode["frames"][:8], episode["actions"][:3])


def test_a_context_without_a_skier_reads_nothing(tables):
    state = SkierState(tables)
    snow = np.zeros((4, 105, 80), np.uint8)
    assert not state.read(snow, np.zeros(3, np.int64)) and np.isnan(state.column)
    assert np.isnan(state.step(1))


def test_tables_are_written_read_back_and_bad_files_refused(tiny_skiing, tmp_path, replayed, tables):
    path = train_skier_state(tiny_skiing.data, tmp_path / "model")
    assert path == tmp_path / "model" / TABLES_FILE
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["kind"] == "skier-state" and meta["states"] == len(tables.states)
    loaded = SkierTables.load(path)
    for name in SkierTables.TABLES + ("states",):
        assert np.array_equal(getattr(loaded, name), getattr(tables, name))
    assert loaded.walls == tables.walls and loaded.sprites.keys() == tables.sprites.keys()
    frames = np.concatenate([episode["frames"] for _, _, episode in replayed])
    drawn = np.nonzero((frames == SKIER).any(axis=(0, 2)))[0]
    assert loaded.rows == tables.rows == (drawn.min(), drawn.max()) and meta["skier_rows"] == list(tables.rows)
    older = replace(tables, rows=None).save(tmp_path / "older.npz")  # tables fit before the rows were
    assert SkierTables.load(older).rows is None
    assert all(np.array_equal(loaded.sprites[k][1], tables.sprites[k][1]) for k in tables.sprites)
    with pytest.raises(UserError, match="no skier-state tables"):
        SkierTables.load(tmp_path / "none.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a skier-state table file.*neuralplay train skier-state"):
        SkierTables.load(tmp_path / "bad.npz")
    with pytest.raises(UserError, match="no training Skiing episodes"):
        train_skier_state(tmp_path / "nothing", tmp_path / "out")
