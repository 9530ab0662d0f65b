"""The skier's state: tables fit from ALE replays (training.skier_tables), read off real frames
and stepped by the keys (runtime.skier_state), and the runtime's column carried by them."""
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from neuralplay.errors import UserError
from neuralplay.games.skiing import HUD_ROWS, SKIER, SKIER_ROWS, SLOPE_END, SNOW
from neuralplay.runtime.skier_state import (COLUMN, COURSE_TOLERANCE, DOWNHILL, FALLEN_FROM, FRAMES_PER_STEP,
                                            HEADING, SPEED, STATE_BYTES, SUBPIXELS, TABLES_FILE, TIMER, SkierState,
                                            SkierTables, slope_scroll, slope_shift, sprite)
from neuralplay.runtime.skiing_course import GATE_FLAG, MOGUL, TREE, UNSEEN, locate, objects_of, window

pytest.importorskip("ale_py")

from neuralplay.training.skier_tables import (DOWNHILL_SUBPIXEL, MOST_ROWS_A_FRAME, SCROLL_BYTES,  # noqa: E402
                                              fall_rules, fallen_states, fit_tables, frames_of_the_skier_alone,
                                              nearest_speed, position,
                                              replay, rows_scrolled, skier_alone, skier_rows, slope_offsets, slope_rows,
                                              sprites_shown, train_skier_state, training_episodes)


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


def test_a_speed_never_seen_moves_the_slope_as_the_nearest_seen_with_the_same_ram20():
    table, seen = np.zeros((256, 256), np.int64), np.zeros((256, 256), bool)
    table[100, 7], table[110, 7], table[50, 8] = 40, 60, 9
    seen[100, 7] = seen[110, 7] = seen[50, 8] = True
    filled = nearest_speed(table, seen)
    assert filled[0, 7] == filled[104, 7] == filled[105, 7] == 40  # the lower where two are as near
    assert filled[106, 7] == filled[255, 7] == 60 and filled[100, 7] == 40 and filled[110, 7] == 60
    assert set(filled[:, 8]) == {9} and not filled[:, 9].any()  # a RAM[20] never seen stays 0


def test_the_downhill_motion_fit_from_replays_is_a_few_rows_a_frame_at_most(tables):
    assert tables.downhill.min() >= 0 and tables.downhill.max() < MOST_ROWS_A_FRAME * SUBPIXELS


@pytest.fixture(scope="module")
def replayed(tiny_skiing):
    return [replay(p) for p in sorted((tiny_skiing.data / "train").glob("*.npz"))]


@pytest.fixture(scope="module")
def tables(replayed):
    return fit_tables(replayed)


def test_frames_with_other_things_of_the_skiers_colour_fit_no_sprite_and_no_skier_row(replayed, tables):
    """The course's last gate has flags of the skier's colour: such frames are not read as the skier."""
    rams, keys, episode = replayed[0]
    t = next(t for t in range(1, len(episode["frames"])) if (episode["frames"][t] == SKIER).any())
    shown = rams[FRAMES_PER_STEP * t - 1]
    assert skier_alone(episode["frames"][t], shown)
    frames = episode["frames"].copy()
    skier_column = int(np.nonzero(frames[t] == SKIER)[1].mean())
    flag_column = skier_column + 20 if skier_column < 40 else skier_column - 20
    frames[t, 80:87, flag_column] = SKIER  # a flag pole far below and beside the skier
    assert not skier_alone(frames[t], shown)
    flagged = [(rams, keys, {**episode, "frames": frames}), *replayed[1:]]
    alone = frames_of_the_skier_alone(flagged)
    assert set(sprites_shown(alone)) <= set(tables.sprites)  # the flagged frame's "sprite" is not among them
    assert skier_rows(alone) == tables.rows and SKIER_ROWS[0] <= tables.rows[0] <= tables.rows[1] <= SKIER_ROWS[1]


def test_the_slopes_scroll_over_a_reading_is_alees_downhill_motion_within_a_row(replayed):
    rams, _, episode = replayed[0]
    motion = SUBPIXELS * rows_scrolled(rams[:, SCROLL_BYTES]) + np.diff(rams[:, DOWNHILL_SUBPIXEL])
    # windows of 7 frames, as the context read below; early on the slope moves half a row a step
    for last in range(8, 64, 4):
        frames = episode["frames"][last - 6:last + 1]
        true = motion[FRAMES_PER_STEP * (last - 6) - 1:FRAMES_PER_STEP * last - 1].sum() / (2 * SUBPIXELS)
        assert abs(slope_scroll(frames) - true) <= 1, last


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


def test_a_reading_keeps_the_candidates_whose_slope_moves_as_the_course_places_each_frame(replayed, tables):
    rams, _, episode = replayed[1]
    down = slope_rows(rams)
    fewer = False
    for start in (20, 40, 60):
        frames, actions = episode["frames"][start - 7:start + 1], episode["actions"][start - 7:start]
        placed, unplaced = SkierState(tables, seed=0), SkierState(replace(tables, course=None), seed=0)
        assert placed.read(frames, actions) and unplaced.read(frames, actions)
        moved = placed.course_motion(frames)
        assert moved[0] is None
        assert moved[-1] == down[FRAMES_PER_STEP * start - 1] - down[FRAMES_PER_STEP * (start - 6) - 1]
        assert unplaced.course_motion(frames) == [None] * len(frames)
        assert (np.abs(placed.candidates[:, DOWNHILL] / SUBPIXELS - moved[-1]) < COURSE_TOLERANCE).all()
        assert (placed.candidates[:, 1] == rams[FRAMES_PER_STEP * start - 1, 15]).any()  # ALE's heading among them
        read_alone = {tuple(row) for row in unplaced.candidates}
        assert all(tuple(row) in read_alone for row in placed.candidates)
        fewer |= len(placed.candidates) < len(unplaced.candidates)
    assert fewer


def test_a_context_without_a_skier_reads_nothing(tables):
    state = SkierState(tables)
    snow = np.zeros((4, 105, 80), np.uint8)
    assert not state.read(snow, np.zeros(3, np.int64)) and np.isnan(state.column)
    assert np.isnan(state.step(1))


def test_tables_are_written_read_back_and_bad_files_refused(tiny_skiing, tmp_path, replayed, tables):
    path = train_skier_state([tiny_skiing.data], tmp_path / "model")
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
    for name in SkierTables.COURSE:
        assert np.array_equal(getattr(loaded, name), getattr(tables, name))
    assert meta["course_rows"] == len(tables.course) and meta["course_objects"] == len(tables.objects)
    assert len(meta["fall_rules"]) == len(tables.falls)
    older = replace(tables, rows=None, course=None, objects=None, falls=None, fallen=None).save(tmp_path / "older.npz")
    assert SkierTables.load(older).rows is None and all(getattr(SkierTables.load(older), name) is None
                                                        for name in SkierTables.COURSE)
    assert all(np.array_equal(loaded.sprites[k][1], tables.sprites[k][1]) for k in tables.sprites)
    with pytest.raises(UserError, match="no skier-state tables"):
        SkierTables.load(tmp_path / "none.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a skier-state table file.*neuralplay train skier-state"):
        SkierTables.load(tmp_path / "bad.npz")
    with pytest.raises(UserError, match="no training Skiing episodes"):
        train_skier_state([tiny_skiing.data, tmp_path / "nothing"], tmp_path / "out")


def test_tables_fit_on_several_collections_read_each_episode_once(tiny_skiing, tmp_path):
    shutil.copytree(tiny_skiing.data / "train", tmp_path / "other" / "train")
    changed = sorted((tmp_path / "other" / "train").glob("*.npz"))[0]
    changed.write_bytes(changed.read_bytes() + b"another collection's episode of that name")
    paths = training_episodes([tiny_skiing.data, tmp_path / "other"])
    first = sorted((tiny_skiing.data / "train").glob("*.npz"))
    assert paths == [*first, changed]


def test_the_course_shows_each_training_frame_as_far_down_as_the_objects_in_ram_place_it(replayed, tables):
    course = tables.course
    assert course.shape[1] == 160 and (course != UNSEEN).mean() > 0.9
    compared = differ = 0
    for rams, _, episode in replayed:
        offsets = slope_offsets(rams)
        assert len(offsets) == len(episode["frames"]) and (np.diff(offsets) >= 0).all()
        for frame, native, at in zip(episode["frames"], episode["slopes"], offsets):
            shown, slope = window(course, int(at)), frame[HUD_ROWS:SLOPE_END]
            seen = (shown != UNSEEN) & (slope != SKIER)
            compared, differ = compared + seen.sum(), differ + ((shown != slope) & seen).sum()
            assert np.array_equal(native[::2, ::2], slope)  # the frame is its native slope downsampled
            whole = course[at:at + len(native)]
            seen = (whole != UNSEEN) & (native != SKIER)
            compared, differ = compared + seen.sum(), differ + ((whole != native) & seen).sum()
    assert max(slope_offsets(rams)[-1] for rams, _, _ in replayed) > 0  # some slope moved
    assert differ <= 0.001 * compared


def test_a_frame_is_found_where_it_is_on_the_course_and_a_frame_off_it_nowhere(tiny_skiing, tables):
    for path in sorted((tiny_skiing.data / "heldout").glob("*.npz")):  # frames the course was not fit on
        rams, _, episode = replay(path)
        offsets = slope_offsets(rams)
        for t in range(1, len(episode["frames"]), 9):
            assert locate(tables.course, episode["frames"][t]) == offsets[t]
    frame = episode["frames"][-1]
    assert locate(tables.course, np.roll(frame, 9, axis=1)) is None  # the course moved sideways: not Skiing's
    snow = np.full_like(frame, SNOW)
    snow[:, :4] = snow[:, 76:] = 1
    assert locate(tables.course, snow) is None  # bare snow fits anywhere, so nowhere
    above = window(tables.course, -4, HUD_ROWS, HUD_ROWS + 3)
    assert (above[:2] == UNSEEN).all() and np.array_equal(above[2], tables.course[0, ::2])
    assert (window(tables.course, len(tables.course)) == UNSEEN).all()


def test_the_courses_objects_are_its_touching_patches_of_a_kind():
    course = np.zeros((40, 160), np.uint8)
    course[:, :8] = 1  # the border is no object
    course[5:9, 20:22] = 6  # a flag
    course[10:20, 50:56] = 3
    course[20, 56] = 4  # a tree of two greens, corner to corner
    course[30:32, 90:100] = 8  # a mogul
    course[35, 120] = UNSEEN
    found = sorted(map(tuple, objects_of(course)))
    assert found == [(5, 8, 20, 21, GATE_FLAG), (10, 20, 50, 56, TREE), (30, 31, 90, 99, MOGUL)]


def standing(column_px: int, heading: int = 5) -> np.ndarray:
    """One candidate, standing, at a column (native px)."""
    c = np.zeros((1, 7), np.int64)
    c[0, SPEED], c[0, HEADING], c[0, COLUMN] = 100, heading, column_px * SUBPIXELS
    return c


def test_a_skier_falls_where_an_object_passes_its_row_within_the_rules_span(tables):
    at_tree = replace(tables, objects=np.array([[100, 129, 40, 55, TREE]]), falls=np.array([[TREE, 0, 30, -6, 8]]),
                      fallen=np.tile([0, 71, 70], (FALLEN_FROM, 1)))
    # the tree's top at screen row 100 - rows + 28: it passes row 30 as the slope goes from 97 to 98 rows down
    passing, short, past = np.array([[98], [97], [96]]), np.array([[97], [96], [95]]), np.array([[99], [98], [97]])
    assert at_tree.falling(standing(44), passing)[0] and not at_tree.falling(standing(44), short)[0]
    assert not at_tree.falling(standing(44), past)[0]
    assert at_tree.falling(standing(34), passing)[0] and not at_tree.falling(standing(33), passing)[0]  # span -6..8
    assert at_tree.falling(standing(48), passing)[0] and not at_tree.falling(standing(49), passing)[0]
    assert not at_tree.falling(standing(44, heading=FALLEN_FROM + 55), passing)[0]  # a fallen skier falls no more
    lagged = replace(at_tree, falls=np.array([[TREE, 1, 30, -6, 8]]))  # a frame later: rows a frame and two before
    assert lagged.falling(standing(44), np.array([[99], [98], [97]]))[0]
    before = standing(44)
    fell = at_tree.fall(before, at_tree.step(before, 0), np.array([True]))
    assert fell[0, SPEED] == 0 and fell[0, HEADING] == 71 and fell[0, TIMER] == 70
    assert fell[0, COLUMN] == at_tree.step(before, 0)[0, COLUMN]


def test_a_placed_skier_state_falls_on_the_course_and_an_unplaced_one_never(tables):
    rules = replace(tables, objects=np.array([[100, 129, 0, 159, TREE]]), falls=np.array([[TREE, 0, 30, -160, 160]]),
                    fallen=np.tile([0, 71, 70], (FALLEN_FROM, 1)))
    states = tables.states[tables.states[:, 1] < FALLEN_FROM]
    fast = states[np.argmax(tables.downhill[states[:, 0], states[:, 3]])]  # a state of ALE's whose slope moves most
    for at, falls in ((90, True), (None, False)):
        state = SkierState(rules, seed=0)
        state.candidates = np.array([[*fast, 80 * SUBPIXELS, 0]])
        state.place(at)
        headings = []
        for _ in range(40):
            state.step(0)
            headings.append(int(state.candidates[0, HEADING]))
        assert state.candidates[0, DOWNHILL] > 10 * SUBPIXELS or falls  # unplaced, it went past the tree
        assert (max(headings) >= FALLEN_FROM) is falls


def test_what_a_fall_sets_and_the_fall_rules_fit_from_replays(replayed):
    fallen = fallen_states(replayed)
    assert fallen.shape == (FALLEN_FROM, 3) and (fallen[:, 1] >= FALLEN_FROM).all()
    rules = fall_rules(replayed, objects_of(fit_tables(replayed).course))
    assert rules.shape[1] == 5 and set(rules[:, 0]) <= {TREE, GATE_FLAG, MOGUL}
