"""tools/skier_ram.py: ALE's RAM read frame by frame, tables of the skier's state fit and rolled out."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ale_py")

TOOL = Path(__file__).parent.parent / "tools" / "skier_ram.py"
spec = importlib.util.spec_from_file_location("skier_ram", TOOL)
tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool)


def test_position_reads_the_signed_sub_pixel_byte():
    ram = np.zeros((3, 128), np.int64)
    ram[:, tool.X] = 10
    ram[:, tool.SUBPIXEL] = [1, 255, 224]  # +1/32, -1/32, -32/32 px
    assert list(tool.position(ram)) == [321, 319, 288]


def test_play_holds_each_key_for_a_step_and_replays_from_its_seed():
    rams, keys = tool.play(seed=3, steps=40)
    assert rams.shape == (160, 128) and keys.shape == (160,)
    assert (keys.reshape(40, 4) == keys.reshape(40, 4)[:, :1]).all()
    again, _ = tool.play(seed=3, steps=40)
    assert np.array_equal(rams, again)


def test_tables_fit_on_an_episode_replay_it_and_the_figures_are_shares():
    episode = tool.play(seed=0, steps=150)
    tables = tool.fit([episode])
    step = tool.one_step(tables, [episode])  # on its own episode every state and key was seen
    assert step["state_seen"] == 1.0 and step["move_seen"] == 1.0
    assert min(step["state_right"].values()) > 0.99
    out = tool.measure(episodes=2, fit_count=1, steps=150, rollouts=2, horizon=20, seed=0)
    assert out["rollouts"] == 2 and len(out["per_rollout"]) == 2
    for name in ("tracked", "held_still", "unseen"):
        assert 0.0 <= out[name] <= 1.0


def test_the_tool_runs_end_to_end_and_refuses_a_bad_split():
    run = lambda *a: subprocess.run([sys.executable, str(TOOL), *a], capture_output=True, text=True)
    ok = run("--episodes", "2", "--fit", "1", "--steps", "120", "--rollouts", "1", "--horizon", "20", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["horizon"] == 20
    text = run("--episodes", "2", "--fit", "1", "--steps", "120", "--rollouts", "1", "--horizon", "20")
    assert "rollouts of 20 steps" in text.stdout
    bad = run("--episodes", "2", "--fit", "2")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("skier_ram: --fit 2")
    short = run("--steps", "10")
    assert short.returncode == 2 and "--steps 10" in short.stderr
