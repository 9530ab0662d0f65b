"""tools/skier_state.py: the runtime's skier state read off the eval's context frames and scored against ALE."""
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuralplay.runtime.skier_state import SkierState
from neuralplay.training.skier_tables import fit_tables, replay

pytest.importorskip("ale_py")

TOOL = Path(__file__).parent.parent / "tools" / "skier_state.py"
spec = importlib.util.spec_from_file_location("skier_state", TOOL)
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)


@pytest.fixture(scope="module")
def replayed(tiny_skiing):
    paths = sorted((tiny_skiing.data / "train").glob("*.npz"))
    return [replay(p) for p in paths]


def test_the_true_state_stepped_follows_its_own_replay(replayed):
    tables = fit_tables(replayed)
    rams, keys, _ = replayed[0]
    got = tool.roll(tables, tool.true_state(rams, 3), rams, keys, 3, 40, False, np.random.default_rng(0))
    assert got["tracked"] > 0.9 and got["candidates"] == 1


def test_the_tool_reads_the_context_the_runtime_way(replayed):
    tables = fit_tables(replayed)
    rams, keys, episode = replayed[0]
    start = 10
    read, every_frame_read = tool.read_state(tables, episode, start, 5)
    true = tool.true_state(rams, start)[0]
    assert every_frame_read and 0 < len(read) < len(tables.states) * 32
    assert abs(np.median(read[:, 5]) - true[5]) / 32 <= 6  # columns, 1/32 px
    state = SkierState(tables)
    state.read(episode["frames"][5:11], episode["actions"][5:10])  # frames 6-10 read, as the tool's 5
    assert np.array_equal(np.unique(state.candidates, axis=0), np.unique(read, axis=0))


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
    fitted = subprocess.run([sys.executable, str(TOOL), "--data", str(empty), "--fit", str(tiny_skiing.data),
                             *base[4:], "--json"], capture_output=True, text=True, timeout=600)
    assert fitted.returncode == 0, fitted.stderr
    assert json.loads(fitted.stdout)["fit_on"] == [str(tiny_skiing.data)]
