"""Recording, replay, listing, video export and the data loop, on real files."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pygame
import pytest

from neuralplay.app.replay import ReplaySession
from neuralplay.app.tetris import TetrisSession
from neuralplay.errors import UserError
from neuralplay.recording.format import VERSION, read
from neuralplay.recording.writer import Recorder

ROOT = Path(__file__).resolve().parents[1]
TICK = 1 / 60


def record_autopilot(path: Path, ticks: int = 900, engine: str = "real", model=None) -> Path:
    panes = {"real": ["real"], "compare": ["real", "neural"]}[engine]
    recorder = Recorder(path, "tetris", engine, panes, None)
    session = TetrisSession(engine, 3, pygame, model, autopilot=True, recorder=recorder)
    for tick in range(ticks):
        session.update(TICK, [], set())
        if tick % 30 == 29:  # the game runs faster than real time here: flush as half a second would
            recorder.flush()
    recorder.close()
    assert recorder.error is None
    return path


def test_a_recording_reads_back_step_for_step(tmp_path):
    path = record_autopilot(tmp_path / "a.nprec")
    rec = read(path)
    assert rec.complete and rec.header["game"] == "tetris" and rec.panes() == ["real"]
    frames, actions = rec.arrays["frame_real"], rec.arrays["action"]
    assert actions[0] == -1 and rec.steps == (actions >= 0).sum() > 20
    assert frames.shape[1:] == (2, 22, 10)
    assert np.all(np.diff(rec.arrays["t"]) >= 0)


def test_a_file_cut_short_replays_up_to_where_it_ends(tmp_path):
    path = record_autopilot(tmp_path / "a.nprec", ticks=2000)
    full = read(path)
    data = path.read_bytes()
    cut = tmp_path / "cut.nprec"
    cut.write_bytes(data[: len(data) * 2 // 3])
    rec = read(cut)
    assert not rec.complete and 0 < rec.steps < full.steps
    session = ReplaySession(rec, pygame)
    assert "cut short" in session.status()
    assert np.array_equal(rec.arrays["frame_real"], full.arrays["frame_real"][: len(rec.arrays["frame_real"])])


def test_not_a_recording_and_a_newer_format_are_one_clear_error(tmp_path):
    other = tmp_path / "x.nprec"
    other.write_bytes(b"hello world, not a recording")
    with pytest.raises(UserError, match="not a neuralplay recording"):
        read(other)
    path = record_autopilot(tmp_path / "a.nprec", ticks=100)
    data = bytearray(path.read_bytes())
    data[5:7] = (VERSION + 1).to_bytes(2, "little")
    newer = tmp_path / "newer.nprec"
    newer.write_bytes(bytes(data))
    with pytest.raises(UserError, match="newer"):
        read(newer)


def test_an_unwritable_path_stops_recording_and_the_game_goes_on(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    recorder = Recorder(blocker / "sub" / "a.nprec", "tetris", "real", ["real"], None)
    assert recorder.error and "cannot write" in recorder.error
    session = TetrisSession("real", 0, pygame, autopilot=True, recorder=recorder)
    for _ in range(300):
        session.update(TICK, [], set())
    assert session.steps > 10 and "cannot write" in session.status()
    recorder.close()


def test_replay_keys_step_seek_and_speed(tmp_path):
    rec = read(record_autopilot(tmp_path / "a.nprec"))
    s = ReplaySession(rec, pygame)
    s.update(TICK, [pygame.K_SPACE], set())  # pause
    s.update(TICK, [pygame.K_UP], set())
    s.update(TICK, [pygame.K_RIGHT], set())
    assert s.index == 11
    s.update(TICK, [pygame.K_LEFT, pygame.K_DOWN], set())
    assert s.index == 0
    s.seek(1.0)
    assert s.index == s.last
    s.update(TICK, [pygame.K_EQUALS], set())
    assert "x2" in s.status()
    assert [p.title for p in s.panes()] == ["Real"]


def neuralplay(*args, **kw):
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    return subprocess.run([sys.executable, "-m", "neuralplay", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300, **kw)


def test_kill_9_loses_at_most_a_second(tmp_path):
    path = tmp_path / "killed.nprec"
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "neuralplay", "play", "tetris", "--engine", "real",
                             "--autopilot", "--record", str(path)], stdout=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)
    for line in proc.stdout:
        if line.startswith("first frame"):
            break
    played_from = time.perf_counter()
    time.sleep(3.0)
    played = time.perf_counter() - played_from
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rec = read(path)
    assert not rec.complete
    assert rec.duration_s >= played - 1.0


def test_recordings_list_json_and_video_export(tmp_path, user_home):
    folder = user_home / "recordings"
    record_autopilot(folder / "one.nprec", ticks=300)
    listing = neuralplay("recordings")
    assert listing.returncode == 0 and "one.nprec" in listing.stdout
    facts = json.loads(neuralplay("recordings", "--json", str(folder / "one.nprec")).stdout)
    assert {"game", "engine", "steps", "duration_s", "bytes", "complete"} <= set(facts)
    assert facts["game"] == "tetris" and facts["complete"] is True
    for name in ("out.gif", "out.mp4"):
        if name.endswith(".mp4"):
            pytest.importorskip("imageio_ffmpeg")
        result = neuralplay("export", str(folder / "one.nprec"), "--video", str(tmp_path / name))
        assert result.returncode == 0, result.stderr
        assert (tmp_path / name).stat().st_size > 1000


def test_replay_cli_plays_to_the_end_and_rejects_a_non_recording(tmp_path):
    path = record_autopilot(tmp_path / "a.nprec", ticks=200)
    ok = neuralplay("replay", str(path), "--exit-at-end", "--speed", "50")
    assert ok.returncode == 0, ok.stderr
    (tmp_path / "junk.nprec").write_text("junk")
    bad = neuralplay("replay", str(tmp_path / "junk.nprec"))
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1
    assert "Traceback" not in bad.stderr


def test_recorded_play_becomes_training_data_and_trains(tmp_path):
    pytest.importorskip("torch")
    from neuralplay.models.tetris_gan import TetrisGANConfig
    from neuralplay.training.tetris_data import CollectConfig, collect, collect_recordings, load
    from neuralplay.training.tetris_train import TrainConfig, train

    rec_dir = tmp_path / "recs"
    record_autopilot(rec_dir / "human.nprec", ticks=1500)
    data_dir = tmp_path / "data"
    collect(CollectConfig(out=str(data_dir), train_steps=200, test_steps=200, seed=1), show_progress=False)
    facts = collect_recordings(rec_dir, data_dir)
    recorded = load(data_dir / "recorded.npz")
    assert facts["transitions"] == len(recorded) > 20
    assert (recorded.spawn >= 0).any()
    cfg = TrainConfig(data=str(data_dir), run_dir=str(tmp_path / "run"), steps=2, batch_size=8,
                      eval_every=2, eval_examples=50, eval_closed_loop_steps=20, threads=1, warmup=1,
                      model=TetrisGANConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, disc_d_model=16,
                                            disc_layers=1))
    assert train(cfg, show_progress=False)["step"] == 2
