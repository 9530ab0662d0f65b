"""tools/skier_twins.py: ALE replays of held-out episodes, twins whose context is the real one, their scores."""
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuralplay.errors import UserError
from neuralplay.games.skiing import SKIER

pytest.importorskip("ale_py")

TOOL = Path(__file__).parent.parent / "tools" / "skier_twins.py"
spec = importlib.util.spec_from_file_location("skier_twins", TOOL)
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)


def skier_at(columns: list[int | None]) -> np.ndarray:
    frames = np.zeros((len(columns), 105, 80), np.uint8)
    for t, c in enumerate(columns):
        if c is not None:
            frames[t, 22:26, c:c + 2] = SKIER  # in the rows ALE draws its skier in
    return frames


def test_twin_scores_count_kept_and_separated_frames():
    real = skier_at([10, 10, 10, 10, None])
    assert tool.twin_scores(real, real) == (1.0, 0.0)
    # 2 px off: kept; 5 px: lost but within reach of one drawing; 20 px and none: separated
    persistence, separated = tool.twin_scores(skier_at([12, 15, 30, None, 10]), real)
    assert persistence == 0.25 and separated == 0.5  # the frame ALE shows no skier is not counted
    assert tool.twin_scores(real, skier_at([None] * 5)) is None


def test_a_held_out_episode_replays_and_a_twin_keeps_its_context(tiny_skiing):
    from neuralplay.games.skiing import SkiingGame
    from neuralplay.training.skiing_data import load_episode

    path = sorted((tiny_skiing.data / "heldout").glob("held-random-*.npz"))[0]
    episode = load_episode(path)
    replay = tool.Replay(SkiingGame(), path, episode)
    np.testing.assert_array_equal(replay.play(10, episode["actions"][10:20]), episode["frames"][11:21])
    values = [np.unique(replay.rams[:, b]) for b in range(tool.RAM_BYTES)]
    twins = tool.start_twins(replay, episode, 20, 3, 30, 1, values)
    assert twins and all(0 <= t["persistence"] <= 1 and 0 <= t["separated"] <= 1 for t in twins)
    twin = twins[0]
    value = int(replay.rams[17, twin["byte"]]) + twin["delta"]
    assert value in values[twin["byte"]]  # moved only to values the game itself uses
    np.testing.assert_array_equal(replay.play(17, episode["actions"][17:20], twin["byte"], value),
                                  episode["frames"][18:21])
    summary = tool.summarise([{"start": "x", "twins": twins}, {"start": "y", "twins": []}])
    assert summary["starts_with_twins"] == 1 and summary["twins"] == len(twins)
    assert 0.5 <= summary["mean_bound"] <= 1


def test_an_episode_that_does_not_replay_is_refused(tiny_skiing, tmp_path):
    from neuralplay.games.skiing import SkiingGame
    from neuralplay.training.skiing_data import load_episode

    path = sorted((tiny_skiing.data / "heldout").glob("held-random-*.npz"))[0]
    episode = load_episode(path)
    episode["frames"] = episode["frames"].copy()
    episode["frames"][3] = 0
    with pytest.raises(UserError, match="does not replay"):
        tool.Replay(SkiingGame(), path, episode)
    with pytest.raises(UserError, match="no seed in its name"):
        tool.Replay(SkiingGame(), tmp_path / "held-random.npz", load_episode(path))


def test_the_tool_runs_end_to_end(tiny_skiing, tmp_path):
    base = [sys.executable, str(TOOL), "--data", str(tiny_skiing.data), "--checkpoint", str(tiny_skiing.dynamics)]
    shown = subprocess.run([*base, "--rollouts", "2", "--horizon", "20"], capture_output=True, text=True, timeout=600)
    assert shown.returncode == 0, shown.stderr
    assert "2 starts, context 3 frames, horizon 20" in shown.stdout
    result = json.loads(subprocess.run([*base, "--rollouts", "2", "--horizon", "20", "--json"],
                                       capture_output=True, text=True, timeout=600).stdout)
    assert result["starts"] == 2 and len(result["per_start"]) == 2 and result["context_frames"] == 3
    assert "context 5 frames" in subprocess.run([*base, "--rollouts", "1", "--horizon", "5", "--frames", "5"],
                                                capture_output=True, text=True, timeout=600).stdout
    bad = subprocess.run([*base, "--rollouts", "0"], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 1 and "at least 1" in bad.stderr and "Traceback" not in bad.stderr
    empty = tmp_path / "empty"
    shutil.copytree(tiny_skiing.data / "train", empty / "train")
    missing = subprocess.run([*base[:2], "--data", str(empty), "--checkpoint", str(tiny_skiing.dynamics)],
                             capture_output=True, text=True, timeout=600)
    assert missing.returncode == 1 and "held-out" in missing.stderr and "Traceback" not in missing.stderr
