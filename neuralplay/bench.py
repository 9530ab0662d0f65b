"""`neuralplay bench`: speed of the neural and real games, the app's start-up time, and
(Skiing) memory over a long neural run."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: importing the runtime loads onnxruntime
    from neuralplay.runtime.skiing import Sampling

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
        "startup_s": round(startup_seconds("tetris", checkpoint), 3),
        "threads": threads,
        "steps": len(events),
        "checkpoint": model.checkpoint.identity,
    }


def rss_mb() -> float:
    """This process's resident memory now (Linux), else its peak so far."""
    try:
        pages = int(open("/proc/self/statm").read().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def bench_skiing(checkpoint: str | None = None, tokenizer: str | None = None, steps: int = 10_000,
                 threads: int = 1, sampling: Sampling | None = None) -> dict:
    """End-to-end neural steps (MaskGIT passes, cache update, decode) for `steps` steps in one
    run from a start state, never reset, so the memory at the end shows whether it grows.
    The checkpoint's MaskGIT passes, or `sampling`'s."""
    from neuralplay.games.skiing import HeldRandomPlayer, SkiingGame
    from neuralplay.runtime.skiing import NeuralSkiing, load_starts

    model = NeuralSkiing(checkpoint, tokenizer, threads=threads, seed=0, sampling=sampling)
    start = load_starts(model.step_ckpt.onnx_path.parent)[0]
    player = HeldRandomPlayer(0)
    frame = model.reset(start.frames, start.actions_into_frames())
    for _ in range(20):  # warm-up
        frame = model.step(player.act(frame))
    frame = model.reset(start.frames, start.actions_into_frames())
    rss_start = rss_mb()
    times = np.empty(steps)
    for i in range(steps):
        action = player.act(frame)
        t = time.perf_counter()
        frame = model.step(action)
        times[i] = time.perf_counter() - t
    rss_end = rss_mb()

    game = SkiingGame()
    game.reset(0)
    real_steps = min(steps, 3000)
    t = time.perf_counter()
    for _ in range(real_steps):
        game.step(player.act(frame))
        if game.over:
            game.reset(0)
    real_s = time.perf_counter() - t
    return {
        "neural_steps_per_s": round(steps / times.sum(), 1),
        "real_steps_per_s": round(real_steps / real_s, 1),
        "neural_ms_p50": round(float(np.percentile(times, 50)) * 1e3, 3),
        "neural_ms_p99": round(float(np.percentile(times, 99)) * 1e3, 3),
        "startup_s": round(startup_seconds("skiing", checkpoint, tokenizer), 3),
        "threads": threads,
        **model.decoding,
        "steps": steps,
        "rss_mb_start": rss_start,
        "rss_mb_end": rss_end,
        "checkpoint": model.identity,
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


def startup_seconds(game: str, checkpoint: str | None, tokenizer: str | None = None) -> float:
    """Seconds from launching `neuralplay play GAME` to the line it prints when its first
    frame is on screen (under the dummy video driver, so it runs anywhere)."""
    cmd = [sys.executable, "-m", "neuralplay", "play", game, "--autopilot", "--max-steps", "1"]
    if checkpoint:
        cmd += ["--checkpoint", str(checkpoint)]
    if tokenizer:
        cmd += ["--tokenizer", str(tokenizer)]
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
