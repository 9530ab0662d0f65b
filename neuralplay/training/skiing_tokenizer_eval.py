"""Evaluate the exported Skiing tokenizer with onnxruntime on held-out episodes."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from neuralplay.runtime.skiing_tokenizer import SkiingTokenizer
from neuralplay.training.skiing_data import episode_paths, load_episode, load_frames, still
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
    return {**result, **still_code_changes(tokenizer, heldout, limit_frames)}


def still_code_changes(tokenizer: SkiingTokenizer, heldout: Path, limit_frames: int = 2000) -> dict:
    """Between consecutive held-out frames that are identical below the HUD (the slope stands,
    only the timer and the gates left change), the share of each row of tokens whose code
    changes anyway. The encoder sees past a token's own patch, so the changing HUD can reach
    the codes of the rows below it: codes that change where the picture does not, which a
    dynamics model has to predict all the same."""
    changed, pairs = [], 0
    paths = episode_paths(heldout)
    for path in paths:
        frames = load_episode(path)["frames"][:limit_frames // len(paths) + 1]
        steps = np.flatnonzero(still(frames))
        if not len(steps):
            continue
        tokens = np.concatenate([tokenizer.encode(frames[i:i + 64]) for i in range(0, len(frames), 64)])
        changed.append((tokens[steps + 1] != tokens[steps]).sum(axis=0))
        pairs += len(steps)
    if not pairs:
        return {"still_code_change_by_token_row": None, "still_pairs": 0}
    by_row = np.sum(changed, axis=0).mean(axis=1) / pairs
    return {"still_code_change_by_token_row": [round(float(r), 4) for r in by_row], "still_pairs": pairs}


def evaluate_checkpoint(folder: str | None, data_dir: Path, threads: int = 2) -> dict:
    tokenizer = SkiingTokenizer(folder, threads)
    return {"checkpoint": tokenizer.identity, "data": str(data_dir),
            **evaluate_tokenizer(tokenizer, data_dir / "heldout")}
