"""tools/skier_ram.py: ALE's RAM read frame by frame, tables of the skier's state fit and rolled out."""
import importlib.util
import json
import subprocess
import sys
from collections import Counter
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


def test_a_lookup_reads_bytes_the_key_and_the_heading_turned_to():
    ram = np.arange(128, dtype=np.int64)
    assert tool.lookup((14, tool.KEY, tool.TURNED), ram, 2, turned=7) == (14, 2, 7)


def test_play_holds_each_key_for_a_step_and_replays_from_its_seed():
    rams, keys = tool.play(seed=3, steps=40)
    assert rams.shape == (160, 128) and keys.shape == (160,)
    assert (keys.reshape(40, 4) == keys.reshape(40, 4)[:, :1]).all()
    again, _ = tool.play(seed=3, steps=40)
    assert np.array_equal(rams, again)


def test_tables_fit_on_an_episode_replay_it_one_frame_on():
    episode = tool.play(seed=0, steps=150)
    for model in tool.MODELS.values():
        tables = tool.fit(model, [episode])
        step = tool.one_step(model, tables, [episode])  # on its own episode every lookup was seen
        assert all(f["seen"] == 1.0 for f in step.values())
        assert step["ram[98]"]["right"] > 0.99 and step["move"]["right"] > 0.5
    joint = tool.one_step(tool.JOINT, tool.fit(tool.JOINT, [episode]), [episode])
    assert min(f["right"] for name, f in joint.items() if name != "move") > 0.99


def test_a_rollout_moves_the_column_by_its_table_within_the_walls_and_counts_unseen_lookups():
    rams, keys = tool.play(seed=1, steps=60)
    model = {tool.MOVE: (tool.X,)}  # a move looked up by the column itself
    column = int(rams[0, tool.X])
    table = lambda entries: tool.Table((tool.X,), {k: Counter({v: 1}) for k, v in entries.items()})
    open_walls = (0, 256 * 32)
    moving = tool.rollout(model, {tool.MOVE: table({(column,): 32}), "walls": open_walls}, rams, keys, 0, horizon=5)
    still = tool.rollout(model, {tool.MOVE: table({}), "walls": open_walls}, rams, keys, 0, horizon=5)
    assert still["unseen"] == 1.0 and still["tracked"] == still["held_still"]
    assert moving["unseen"] == 0.0  # the rollout moves its own column; the RAM it looks up stays
    start = tool.position(rams[0]) / 32  # one pixel a frame: 4 px a step
    want = [abs(start + 4 * (t + 1) - rams[4 * (t + 1), tool.X]) <= tool.COLUMN_TOLERANCE_PX for t in range(5)]
    assert moving["tracked"] == np.mean(want)
    walled = tool.rollout(model, {tool.MOVE: table({(column,): 32}), "walls": (0, column * 32 + 31)}, rams, keys, 0, 5)
    want = [abs(column + 31 / 32 - rams[4 * (t + 1), tool.X]) <= tool.COLUMN_TOLERANCE_PX for t in range(5)]
    assert walled["tracked"] == np.mean(want)


def test_on_ales_state_the_lookups_read_ales_ram_every_frame():
    rams, keys = tool.play(seed=2, steps=40)
    model = {tool.MOVE: (tool.X,)}
    table = lambda entries: tool.Table((tool.X,), {k: Counter({v: 1}) for k, v in entries.items()})
    seen_columns = table({(int(c),): 0 for c in rams[:, tool.X]})
    walls = (0, 256 * 32)
    free = tool.rollout(model, {tool.MOVE: seen_columns, "walls": walls}, rams, keys, 0, 10, ale_state=True)
    assert free["unseen"] == 0.0
    only_start = table({(int(rams[0, tool.X]),): 0})
    held = tool.rollout(model, {tool.MOVE: only_start, "walls": walls}, rams, keys, 0, 10)
    assert held["unseen"] == 0.0  # without ALE's state the column looked up never changes


def test_a_table_takes_the_nearest_value_seen_of_its_ranged_source_with_the_same_other_sources():
    table = tool.Table((tool.SPEED, 19), {(10, 5): Counter({3: 2, 4: 1}), (40, 5): Counter({7: 1}),
                                          (10, 6): Counter({-1: 1})})
    ram = np.zeros(128, np.int64)
    ram[19] = 5
    for speed, want in ((10, 3), (20, 3), (30, 7), (200, 7)):
        ram[tool.SPEED] = speed
        assert table.get(ram, 0) == want
    ram[19] = 9
    assert table.get(ram, 0) is None  # no entry with these other sources
    assert tool.Table((19,), {(5,): Counter({1: 1})}).get(ram, 0) == 1  # 19 ranges too: 9 takes 5's
    b20 = tool.Table((tool.TURNED, 20), {(3, 100): Counter({-1: 1}), (3, 140): Counter({1: 1})})
    ram[20] = 104
    assert b20.get(ram, 0, turned=3) == -1 and b20.get(ram, 0, turned=4) is None  # no entry for heading 4
    assert tool.Table((15, 98, tool.KEY), {(2, 0, 1): Counter({1: 1})}).get(ram, 0) is None  # none ranges: exact


def test_measure_gives_both_models_over_the_same_starts():
    out = tool.measure(episodes=2, fit_count=1, steps=150, rollouts=2, horizon=20, seed=0)
    assert out["rollouts"] == 2 and 0.0 <= out["held_still"] <= 1.0
    for name in tool.MODELS:
        assert len(out[name]["per_rollout"]) == 2
        assert 0.0 <= out[name]["tracked"] <= 1.0 and 0.0 <= out[name]["unseen"] <= 1.0
        assert set(out[name]["one_step"]) == {"ram[14]", "ram[15]", "ram[19]", "ram[20]", "ram[98]", "move"}


def test_the_tool_runs_end_to_end_and_refuses_a_bad_split():
    run = lambda *a: subprocess.run([sys.executable, str(TOOL), *a], capture_output=True, text=True)
    ok = run("--episodes", "2", "--fit", "1", "--steps", "120", "--rollouts", "1", "--horizon", "20", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["horizon"] == 20
    text = run("--episodes", "2", "--fit", "1", "--steps", "120", "--rollouts", "1", "--horizon", "20")
    assert "rollouts of 20 steps" in text.stdout and "factored:" in text.stdout
    bad = run("--episodes", "2", "--fit", "2")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("skier_ram: --fit 2")
    short = run("--steps", "10")
    assert short.returncode == 2 and "--steps 10" in short.stderr
