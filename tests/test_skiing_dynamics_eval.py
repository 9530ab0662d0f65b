"""The neural Skiing evaluation on tiny exported models: metrics in range, determinism, an
oracle that replays the truth scores perfectly, the metric helpers, the report, the errors."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ale_py")

from neuralplay.errors import UserError  # noqa: E402
from neuralplay.games.skiing import PSNR_CAP_DB, SKIER, frame_mse, psnr_from_mse, skier_x, upsample  # noqa: E402
from neuralplay.training.skiing_data import load_episode  # noqa: E402
from neuralplay.training.skiing_dynamics_eval import (  # noqa: E402
    evaluate_checkpoint, evaluate_dynamics, horizon_psnr_db, miss_kind, skier_centroid, skier_match, sideways_px_per_step,
    skier_persistence,
    summary_lines,
)

SMALL = {"teacher_forced": 12, "rollouts": 4, "horizon": 300}
TIMING = ("step_ms_p50",)


@pytest.fixture(scope="module")
def tiny(tiny_skiing):
    return tiny_skiing


@pytest.fixture(scope="module")
def neural(tiny):
    from neuralplay.runtime.skiing import NeuralSkiing

    return NeuralSkiing(tiny.dynamics, tiny.tokenizer, threads=1, seed=0)


@pytest.fixture(scope="module")
def result(tiny, neural):
    return evaluate_dynamics(neural, tiny.data / "heldout", **SMALL)


def test_metrics_are_all_there_and_in_range(result):
    for key in ("teacher_forced_psnr_db", "rollout_psnr_db_15", "rollout_psnr_db_60"):
        assert math.isfinite(result[key]) and 0 < result[key] <= PSNR_CAP_DB
    for key in ("token_accuracy", "skier_persistence", "teacher_forced_pixel_accuracy"):
        assert 0 <= result[key] <= 1
    assert result["teacher_forced_frames"] == SMALL["teacher_forced"]
    shares = result["teacher_forced_error_share_by_token_row"]
    assert len(shares) == 14 and all(v >= 0 for v in shares) and abs(sum(shares) - 1) < 1e-3
    assert result["rollouts"] == SMALL["rollouts"]
    assert result["rollout_horizon"] == 64 - 2  # 64-step episodes: shortened to what the episodes allow
    assert len(result["psnr_by_horizon"]) == result["rollout_horizon"]
    assert all(0 < v <= PSNR_CAP_DB for v in result["psnr_by_horizon"])
    assert result["rollout_psnr_db_15"] == result["psnr_by_horizon"][14]
    assert result["skier_frames_counted"] > 0 and result["step_ms_p50"] > 0
    by_rollout = result["skier_persistence_by_rollout"]
    assert len(by_rollout) == result["rollouts"] and all(v is None or 0 <= v <= 1 for v in by_rollout)
    assert sum(s.startswith("crash-") for s in result["rollout_starts"]) >= 1  # crashes are covered
    assert len({s.split("@")[0] for s in result["rollout_starts"]}) == 3  # spread over the episodes
    assert len(result["changed_pixels_by_horizon"]) == len(result["real_changed_pixels_by_horizon"]) == 62
    assert 0 <= result["changed_pixel_share"] <= 1 and 0 < result["real_changed_pixel_share"] <= 1
    misses = result["skier_misses"]
    assert set(misses) == {"no_skier", "row", "column"} and all(0 <= v <= 1 for v in misses.values())
    assert abs(sum(misses.values()) + result["skier_persistence"] - 1) < 1e-9
    assert len(summary_lines(result)) >= 4


def test_the_same_seed_gives_the_same_result(tiny, neural, result):
    again = evaluate_dynamics(neural, tiny.data / "heldout", **SMALL)
    def untimed(r):
        return {k: v for k, v in r.items() if k not in TIMING}

    assert untimed(again) == untimed(result)
    other = evaluate_dynamics(neural, tiny.data / "heldout", teacher_forced=2, rollouts=2, horizon=5, seed=1)
    assert other["rollout_horizon"] == 5 and other["rollout_psnr_db_15"] is None
    assert other["rollout_psnr_db_60"] is None and len(other["psnr_by_horizon"]) == 5


class Oracle:
    """A 'model' that knows the held-out episodes: it finds its context in them and replays
    what ALE showed next, under the episode's own actions only. (Every episode starts from
    the same state, so a context can sit in several: it follows all that agree with the
    actions it is given.) A correct evaluation must score it perfectly."""

    def __init__(self, heldout, tokenizer, context=4):
        self.episodes = [load_episode(p) for p in sorted(heldout.glob("*.npz"))]
        self.tokenizer, self.context = tokenizer, context
        self.frames_read = context - 1  # what NeuralSkiing.reset reads without skier motion
        self.skier_held = 0  # frames in which it kept the skier drawn (none: it draws the truth)
        self.at: list[tuple[int, int]] = []
        self.tokens = np.zeros(140, np.int64)

    def reset(self, frames, actions=None):
        assert len(frames) == self.context - 1 and len(actions) == len(frames) - 1
        n = len(frames)
        self.at = [(e, s) for e, ep in enumerate(self.episodes) for s in range(n - 1, len(ep["frames"]))
                   if np.array_equal(ep["frames"][s - n + 1:s + 1], frames)
                   and np.array_equal(ep["actions"][s - n + 1:s], actions)]
        assert self.at, "context not in the episodes"
        return frames[-1]

    def step(self, action):
        self.at = [(e, s + 1) for e, s in self.at if s < len(self.episodes[e]["actions"])
                   and self.episodes[e]["actions"][s] == action]
        assert self.at, "not an action of the episode"
        e, s = self.at[0]
        frame = self.episodes[e]["frames"][s]
        self.tokens = self.tokenizer.encode(frame[None]).ravel()
        return frame


def test_an_oracle_that_replays_the_truth_scores_perfectly(tiny, neural):
    oracle = Oracle(tiny.data / "heldout", neural.tokenizer, neural.context)
    perfect = evaluate_dynamics(oracle, tiny.data / "heldout", **SMALL)
    assert perfect["teacher_forced_psnr_db"] == perfect["rollout_psnr_db_15"] == PSNR_CAP_DB
    assert perfect["rollout_psnr_db_60"] == PSNR_CAP_DB
    for key in ("token_accuracy", "skier_persistence", "teacher_forced_pixel_accuracy"):
        assert perfect[key] == 1.0
    assert set(perfect["psnr_by_horizon"]) == {PSNR_CAP_DB}
    assert set(perfect["skier_persistence_by_rollout"]) <= {1.0, None}
    assert set(perfect["skier_misses"].values()) == {0.0}
    assert perfect["skier_sideways_px_per_step"] == perfect["real_skier_sideways_px_per_step"] > 0
    assert perfect["changed_pixels_by_horizon"] == perfect["real_changed_pixels_by_horizon"]
    assert perfect["changed_pixel_share"] == perfect["real_changed_pixel_share"] > 0  # the episodes move


class HeldFrame:
    """A 'model' that knows no dynamics: every step shows the last frame it was given."""

    def __init__(self, tokenizer, context=4):
        self.tokenizer, self.context = tokenizer, context
        self.frames_read = context - 1
        self.skier_held = 0
        self.tokens = np.zeros(140, np.int64)

    def reset(self, frames, actions=None):
        self.frame = frames[-1]
        self.tokens = self.tokenizer.encode(frames[-1:]).reshape(-1)
        return self.frame

    def step(self, action):
        return self.frame


def test_the_baselines_are_what_a_model_that_holds_its_frame_scores(tiny, neural, result):
    held = evaluate_dynamics(HeldFrame(neural.tokenizer, neural.context), tiny.data / "heldout", **SMALL)
    assert held["teacher_forced_psnr_db"] == held["copy_previous_psnr_db"] == result["copy_previous_psnr_db"]
    assert held["token_accuracy"] == held["copy_previous_token_accuracy"] == result["copy_previous_token_accuracy"]
    assert held["changed_token_accuracy"] == 0 and held["changed_tokens_per_frame"] > 0  # copying misses every change
    assert held["changed_tokens_per_frame"] == result["changed_tokens_per_frame"]
    assert held["psnr_by_horizon"] == held["frozen_psnr_by_horizon"] == result["frozen_psnr_by_horizon"]
    assert held["rollout_psnr_db_15"] == held["frozen_rollout_psnr_db_15"] == result["frozen_rollout_psnr_db_15"]
    assert held["skier_persistence"] == held["frozen_skier_persistence"] == result["frozen_skier_persistence"]
    assert held["skier_sideways_px_per_step"] in (0.0, None)  # a held skier never moves
    assert held["changed_pixel_share"] == 0 and set(held["changed_pixels_by_horizon"]) == {0.0}  # nor anything else
    assert held["real_changed_pixel_share"] == result["real_changed_pixel_share"] > 0
    assert held["real_skier_sideways_px_per_step"] == result["real_skier_sideways_px_per_step"]
    assert held["copy_previous_psnr_db"] < PSNR_CAP_DB  # the episodes move
    assert any("copied" in line for line in summary_lines(result))


def test_metric_helpers_on_hand_made_frames(tiny):
    from neuralplay.training.skiing_tokenizer import psnr_db

    frames = load_episode(next((tiny.data / "heldout").glob("gates-*.npz")))["frames"][10:14]
    assert (frames == SKIER).any(axis=(1, 2)).all()
    no_skier = np.where(frames == SKIER, 0, frames).astype(np.uint8)
    assert skier_persistence(frames, frames) == 1.0
    assert skier_persistence(no_skier, frames) == 0.0
    assert skier_persistence(frames, no_skier) is None  # the real frames show no skier: not counted
    assert skier_match(np.roll(frames[0], 2, axis=1), frames[0]) is True  # within 3 pixels
    below = np.roll(frames[0], 10, axis=0)  # skier-coloured pixels below the rows ALE draws its skier in
    assert skier_match(below, frames[0]) is False and skier_centroid(below) is None
    flagged = frames[0].copy()
    flagged[60:67, 5] = SKIER  # a flag of the course's last gate, of the skier's colour, far below the skier
    assert skier_centroid(flagged) == skier_centroid(frames[0]) and skier_match(frames[0], flagged) is True
    assert skier_x(upsample(flagged)) == pytest.approx(2 * skier_x(frames[0]) + 0.5)  # native frames too
    mse = np.array([[frame_mse(p, t) for p, t in zip(pred, frames)] for pred in (frames, frames)])
    assert horizon_psnr_db(mse) == [PSNR_CAP_DB] * len(frames)
    assert psnr_from_mse(frame_mse(no_skier[0], frames[0])) == pytest.approx(psnr_db(no_skier[0], frames[0]))
    assert sideways_px_per_step([np.array([10.0, 11.0, np.nan, 12.0, 11.5])]) == pytest.approx(0.75)
    assert miss_kind(None, (5.0, 5.0)) == "no_skier"
    assert miss_kind((9.0, 9.0), (5.0, 5.0)) == "row" and miss_kind((5.0, 9.0), (5.0, 5.0)) == "column"
    assert miss_kind((7.0, 7.0), (5.0, 5.0)) is None
    assert sideways_px_per_step([np.array([np.nan, 5.0])]) is None
    worse = horizon_psnr_db(np.array([[frame_mse(no_skier[0], frames[0])], [0.0]]))[0]
    assert worse == pytest.approx(psnr_from_mse(frame_mse(no_skier[0], frames[0]) / 2))  # the mean of the errors


def test_report_writes_three_valid_pngs(tiny, tmp_path):
    from PIL import Image

    result = evaluate_checkpoint(str(tiny.dynamics), str(tiny.tokenizer), tiny.data, threads=1,
                                 report=tmp_path / "report", teacher_forced=4, rollouts=2, horizon=60)
    assert result["data"] == str(tiny.data) and result["checkpoint"]
    for name in ("rollout_strips.png", "psnr_by_horizon.png", "skier_tracks.png"):
        with Image.open(tmp_path / "report" / name) as image:
            image.verify()
            assert image.format == "PNG" and min(image.size) > 100


def test_missing_or_empty_heldout_folder_is_a_user_error(tiny, neural, tmp_path):
    with pytest.raises(UserError, match="neuralplay collect skiing") as err:
        evaluate_checkpoint(None, None, tmp_path / "nowhere")
    assert str(tmp_path / "nowhere" / "heldout") in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "empty" / "heldout").mkdir(parents=True)
    with pytest.raises(UserError, match="neuralplay collect skiing"):
        evaluate_dynamics(neural, tmp_path / "empty" / "heldout")
