"""The command as a user runs it: exit codes, one-line errors, no torch on the play path."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def neuralplay(*args, env=None, cwd=None):
    full_env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", **(env or {}))
    return subprocess.run([sys.executable, "-m", "neuralplay", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd or ROOT, timeout=300)


def one_line_error(result, *words):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for w in words:
        assert w in lines[0]


@pytest.mark.parametrize("game", ["tetris", "skiing"])
def test_autopilot_plays_the_neural_game_without_torch(game):
    code = ("import sys; from neuralplay.cli import main; "
            f"rc = main(['play', '{game}', '--autopilot', '--max-steps', '30', '--speed', '40']); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)")
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "first frame on screen" in result.stdout


@pytest.mark.parametrize("engine", [["--engine", "real"], ["--compare"]])
def test_other_modes_run_headless(engine):
    result = neuralplay("play", "tetris", *engine, "--autopilot", "--max-steps", "30", "--speed", "40")
    assert result.returncode == 0, result.stderr


def test_unknown_option():
    one_line_error(neuralplay("play", "tetris", "--turbo"), "--turbo", "--help")


def test_no_display():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}
    result = subprocess.run([sys.executable, "-m", "neuralplay", "play", "tetris", "--engine", "real"],
                            capture_output=True, text=True, env=env, cwd=ROOT)
    one_line_error(result, "display")


def test_missing_checkpoint(tmp_path):
    one_line_error(neuralplay("play", "tetris", "--checkpoint", str(tmp_path / "nope.onnx")), "not found")


def test_corrupt_metadata(tmp_path):
    (tmp_path / "bad.json").write_text("{ not json")
    one_line_error(neuralplay("play", "tetris", "--checkpoint", str(tmp_path / "bad.json")), "not valid JSON")


def copy_shipped(tmp_path):
    for suffix in (".onnx", ".json"):
        (tmp_path / f"t{suffix}").write_bytes((ROOT / "checkpoints" / f"tetris{suffix}").read_bytes())
    return tmp_path / "t.json"


def test_checkpoint_of_another_game(tmp_path):
    meta_path = copy_shipped(tmp_path)
    meta = json.loads(meta_path.read_text())
    meta["game"] = "skiing"
    meta_path.write_text(json.dumps(meta))
    one_line_error(neuralplay("play", "tetris", "--checkpoint", str(meta_path)), "skiing", "not tetris")


def test_corrupt_onnx_graph(tmp_path):
    meta_path = copy_shipped(tmp_path)
    onnx_path = meta_path.with_suffix(".onnx")
    onnx_path.write_bytes(onnx_path.read_bytes()[:1000])
    one_line_error(neuralplay("play", "tetris", "--checkpoint", str(meta_path)), "corrupt")


def test_eval_without_data_says_how_to_get_it():
    one_line_error(neuralplay("eval", "tetris", "--data", "/nonexistent"), "neuralplay collect tetris")


def test_no_rollouts_is_one_line():
    one_line_error(neuralplay("eval", "skiing", "--rollouts", "0", "--data", "/nonexistent"), "--rollouts 0", "1 rollout")


def test_a_negative_share_of_extra_data_is_one_line(tmp_path):
    one_line_error(neuralplay("collect", "tetris", "--out", str(tmp_path), "--hard-drop-fraction", "-0.1"),
                   "--hard-drop-fraction -0.1", "negative")
    assert not any(tmp_path.iterdir())  # nothing written


def test_help_lists_every_command():
    result = neuralplay("--help")
    for command in ("play", "collect", "train", "export", "eval", "bench"):
        assert command in result.stdout


def test_bench_reports_every_key():
    result = neuralplay("bench", "tetris", "--json", "--steps", "200")
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    for key in ("neural_steps_per_s", "real_steps_per_s", "neural_ms_p50", "neural_ms_p99", "startup_s"):
        assert facts[key] > 0, key


def test_the_cli_names_the_engine_events():
    from neuralplay.cli import TETRIS_EVENTS
    from neuralplay.games.tetris import EVENT_NAMES

    assert list(TETRIS_EVENTS) == EVENT_NAMES


def test_the_cli_names_the_skiing_steerings():
    from neuralplay.cli import SKIING_STEERING
    from neuralplay.training.skiing_data import STEERING

    assert SKIING_STEERING == STEERING


@pytest.mark.parametrize("args, words", [
    (("train", "skiing-tokenizer", "--codebook-groups", "3"), ("--codebook-groups 3", "divide")),
    (("train", "skiing-tokenizer", "--skier-weight", "0"), ("--skier-weight 0", "positive")),
    (("train", "skiing-dynamics"), ("no Skiing episodes", "collect skiing")),
    (("train", "skiing-dynamics", "--context", "1"), ("--context 1", "2 or more")),
    (("train", "skiing-dynamics", "--change-weight", "0"), ("--change-weight 0", "positive")),
    (("train", "skiing-dynamics", "--skier-weight", "-1"), ("--skier-weight -1", "positive")),
    (("train", "skiing-dynamics", "--hud-weight", "0"), ("--hud-weight 0", "positive")),
    (("train", "skiing-dynamics", "--layers", "0"), ("--layers 0", "1 layer or more")),
    (("train", "skiing-dynamics", "--stale-context", "1"), ("--stale-context 1.0", "below 1")),
    (("train", "skiing-dynamics", "--open-loop-context", "2"), ("--open-loop-context 2.0", "0 to 1")),
    (("train", "skiing-dynamics", "--open-loop-context", "0.5", "--stale-context", "0.3"),
     ("--stale-context and --open-loop-context", "one of them")),
    (("train", "skiing-dynamics", "--shifted-context", "1.5"), ("--shifted-context 1.5", "0 to 1")),
    (("train", "skiing-dynamics", "--fresh-lr-scale", "0"), ("--fresh-lr-scale 0.0", "above 0")),
    (("train", "skiing-dynamics", "--shifted-context", "0.5", "--stale-context", "0.3"),
     ("--stale-context and --shifted-context", "one of them")),
    (("train", "skiing-dynamics", "--init-from", "no-such-run"), ("no-such-run", "train skiing-dynamics")),
    (("train", "skiing-tokenizer", "--init-from", "no-such-run"), ("no-such-run", "skiing-tokenizer")),
    (("train", "tetris", "--columns", "9"), ("--columns 9", "--layers")),
    (("train", "skiing-dynamics", "--data", "a", "--data", "b"), ("one --data folder", "skier-state")),
    (("train", "tetris", "--init-from", "no-such-checkpoint"), ("no-such-checkpoint", "--init-from")),
])
def test_bad_training_options_are_one_line(tmp_path, args, words):
    pytest.importorskip("torch")
    one_line_error(neuralplay(*args, "--data", str(tmp_path), "--run", str(tmp_path / "run")), *words)
