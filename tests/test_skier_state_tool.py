"""tools/skier_state.py: the skier's state read off context frames and stepped by skier_ram's tables."""
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuralplay.games.skiing import SKIER

pytest.importorskip("ale_py")

TOOL = Path(__file__).parent.parent / "tools" / "skier_state.py"
spec = importlib.util.spec_from_file_location("skier_state", TOOL)
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)


def test_a_sprite_is_its_mask_and_leftmost_column():
    frame = np.zeros((105, 80), np.uint8)
    frame[40:43, 10:12] = SKIER
    mask, left = tool.sprite(frame)
    assert left == 10 and mask[0] == (3, 2)
    assert tool.sprite(np.zeros((105, 80), np.uint8))[0] is None


@pytest.fixture(scope="module")
def replayed(tiny_skiing):
    paths = sorted((tiny_skiing.data / "train").glob("*.npz"))
    return [tool.replay(p) for p in paths]


def test_a_replay_holds_each_action_for_a_step_and_ends_on_the_stored_frame(replayed):
    rams, keys, episode = replayed[0]
    steps = len(episode["actions"])
    assert rams.shape == (4 * steps + 1, 128) and keys.shape == (4 * steps + 1,)
    assert (keys[:-1].reshape(steps, 4) == episode["actions"][:, None]).all()


def test_a_replay_that_does_not_match_is_refused(tiny_skiing, tmp_path):
    path = sorted((tiny_skiing.data / "train").glob("*.npz"))[0]
    with np.load(path) as f:
        stored = dict(f)
    stored["actions"] = (stored["actions"] + 1) % 3  # other keys: the replay ends elsewhere
    changed = tmp_path / path.name
    np.savez(changed, **stored)
    with pytest.raises(tool.UserError, match="does not replay"):
        tool.replay(changed)


def test_the_true_state_stepped_follows_its_own_replay(replayed):
    stepper = tool.Stepper(replayed)
    rams, keys, _ = replayed[0]
    got = tool.roll(stepper, tool.true_state(rams, 3), rams, keys, 3, 40, False, np.random.default_rng(0))
    assert got["tracked"] > 0.9 and got["candidates"] == 1
    # stepping several states at once gives each what stepping it alone gives
    c = np.concatenate([tool.true_state(rams, t) for t in (3, 20, 40, 60)])
    assert len(np.unique(c, axis=0)) == 4
    together = stepper.step(c, 1)
    assert all((together[i] == stepper.step(c[i:i + 1], 1)[0]).all() for i in range(4))


def test_the_context_puts_the_candidates_where_the_skier_is(replayed):
    stepper = tool.Stepper(replayed)
    rams, keys, episode = replayed[0]
    start = 10
    read, every_frame_read = tool.read_state(stepper, episode, keys, start, 5)
    true = tool.true_state(rams, start)[0]
    assert every_frame_read and 0 < len(read) < len(stepper.states)
    assert abs(np.median(read[:, 5]) - true[5]) / 32 <= 6  # columns, 1/32 px
    assert set(np.unique(read[:, 1])) <= stepper.headings[tool.sprite(episode["frames"][start])[0]]


def test_the_tool_runs_end_to_end(tiny_skiing, tmp_path):
    base = [sys.executable, str(TOOL), "--data", str(tiny_skiing.data), "--rollouts", "2", "--horizon", "20",
            "--frames", "3"]
    shown = subprocess.run(base, capture_output=True, text=True, timeout=600)
    assert shown.returncode == 0, shown.stderr
    assert "2 starts, 3 context frames, horizon 20" in shown.stdout
    result = json.loads(subprocess.run([*base, "--json"], capture_output=True, text=True, timeout=600).stdout)
    assert result["starts"] == 2 and len(result["per_start"]) == 2
    assert 0 <= result["from_frames"] <= 1 and result["from_true_state_crash_told"] >= 0
    assert result["scroll_read"] and "(sprites only)" in subprocess.run(
        [*base, "--no-scroll"], capture_output=True, text=True, timeout=600).stdout
    for option in (["--frames", "0"], ["--seed", "-1"]):
        bad = subprocess.run([*base, *option], capture_output=True, text=True, timeout=600)
        assert bad.returncode == 2 and "at least" in bad.stderr and "Traceback" not in bad.stderr
    empty = tmp_path / "empty"
    shutil.copytree(tiny_skiing.data / "heldout", empty / "heldout")
    missing = subprocess.run([sys.executable, str(TOOL), "--data", str(empty)], capture_output=True, text=True,
                             timeout=600)
    assert missing.returncode == 2 and "training Skiing episodes" in missing.stderr
    assert "Traceback" not in missing.stderr
