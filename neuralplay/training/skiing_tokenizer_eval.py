"""Evaluate the exported Skiing tokenizer with onnxruntime on held-out episodes."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from neuralplay.runtime.skiing_tokenizer import SkiingTokenizer
from neuralplay.training.skiing_data import load_frames
from neuralplay.training.skiing_tokenizer import reconstruction_metrics


def evaluate_tokenizer(tokenizer: SkiingTokenizer, heldout: Path, limit_frames: int = 2000) -> dict:
    """The tokenizer's metrics on held-out frames, and one frame's decode time."""
    frames = load_frames(heldout)
    frames = frames[np.linspace(0, len(frames) - 1, min(limit_frames, len(frames))).astype(int)]
    tokens = np.concatenate([tokenizer.encode(frames[i:i + 64]) for i in range(0, len(frames), 64)])
    preds = np.concatenate([tokenizer.decode(tokens[i:i + 64]) for i in range(0, len(tokens), 64)])
    result = reconstruction_metrics(preds, frames, tokens, tokenizer.codes_per_group, tokenizer.groups)
    for i in range(20):
        tokenizer.decode(tokens[i % len(tokens)][None])
    times = []
    for i in range(200):
        t = time.perf_counter()
        tokenizer.decode(tokens[i % len(tokens)][None])
        times.append(time.perf_counter() - t)
    result["decode_ms_p50"] = round(float(np.percentile(times, 50)) * 1e3, 3)
    result["frames_evaluated"] = int(len(frames))
    return result


def evaluate_checkpoint(folder: str | None, data_dir: Path, threads: int = 2) -> dict:
    tokenizer = SkiingTokenizer(folder, threads)
    return {"checkpoint": tokenizer.identity, "data": str(data_dir),
            **evaluate_tokenizer(tokenizer, data_dir / "heldout")}
