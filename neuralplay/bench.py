"""`neuralplay bench`: speed of the neural and real games, and the app's start-up time."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

FIRST_FRAME = "first frame on screen"


def bench_tetris(checkpoint: str | None = None, steps: int = 3000, threads: int = 1) -> dict:
    from neuralplay.games.tetris import TetrisGame
    from neuralplay.games.tetris_agent import HeuristicAgent
    from neuralplay.runtime.tetris import NeuralTetris

    model = NeuralTetris(checkpoint, seed=0, threads=threads)
    game = TetrisGame(seed=0)
    agent = HeuristicAgent(seed=0)
    events = []
    for _ in range(steps):  # the event stream of a player, replayed through both engines
        e = agent.act(game.observation())
        events.append(int(e))
        if game.step(e).game_over:
            game.reset()

    model.reset(TetrisGame(seed=0).observation())
    for e in events[:50]:  # warm-up
        model.step(e)
    model.reset(TetrisGame(seed=0).observation())
    times = np.empty(len(events))
    for i, e in enumerate(events):
        t = time.perf_counter()
        model.step(e)
        times[i] = time.perf_counter() - t
        if model.game_over:
            model.reset(TetrisGame(seed=i).observation())

    game.reset(0)
    t = time.perf_counter()
    for e in events:
        if game.step(e).game_over:
            game.reset()
    real_s = time.perf_counter() - t

    recording_ms = recording_cost_ms(model, events)
    return {
        "recording_ms_per_step": recording_ms,
        "neural_steps_per_s": round(len(events) / times.sum(), 1),
        "real_steps_per_s": round(len(events) / real_s, 1),
        "neural_ms_p50": round(float(np.percentile(times, 50)) * 1e3, 4),
        "neural_ms_p99": round(float(np.percentile(times, 99)) * 1e3, 4),
        "startup_s": round(startup_seconds(checkpoint), 3),
        "threads": threads,
        "steps": len(events),
        "checkpoint": model.checkpoint.identity,
    }


def recording_cost_ms(model, events: list[int]) -> float:
    """Mean time the game loop spends handing one step (both panes) to the recorder."""
    import tempfile
    from pathlib import Path

    from neuralplay.games.tetris import TetrisGame
    from neuralplay.recording.writer import Recorder

    game = TetrisGame(seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        recorder = Recorder(Path(tmp) / "bench.nprec", "tetris", "compare", ["real", "neural"], None)
        spent = 0.0
        for e in events:
            if game.step(e).game_over:
                game.reset()
            frames = {"real": game.observation(), "neural": model.board}
            t = time.perf_counter()
            recorder.add(e, 0.0, frames)
            spent += time.perf_counter() - t
        recorder.close()
    return round(spent / len(events) * 1e3, 4)


def startup_seconds(checkpoint: str | None) -> float:
    """Seconds from launching `neuralplay play tetris` to the line it prints when its first
    frame is on screen (under the dummy video driver, so it runs anywhere)."""
    cmd = [sys.executable, "-m", "neuralplay", "play", "tetris", "--autopilot", "--max-steps", "1"]
    if checkpoint:
        cmd += ["--checkpoint", str(checkpoint)]
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", PYTHONUNBUFFERED="1")
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first = None
    for line in proc.stdout:
        if line.startswith(FIRST_FRAME) and first is None:
            first = time.perf_counter() - t
    err = proc.stderr.read()
    if proc.wait() != 0 or first is None:
        raise RuntimeError(err.strip().splitlines()[-1] if err.strip() else "play printed no first frame")
    return first
