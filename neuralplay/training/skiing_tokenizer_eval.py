"""Evaluate the exported Skiing tokenizer with onnxruntime on held-out episodes."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from neuralplay.models.vqvae import patch_grid
from neuralplay.runtime.skiing_tokenizer import SkiingTokenizer
from neuralplay.training.skiing_data import episode_paths, load_episode, load_frames, still
from neuralplay.training.skiing_tokenizer import reconstruction_metrics


def evaluate_tokenizer(tokenizer: SkiingTokenizer, heldout: Path, limit_frames: int = 2000) -> dict:
    """The tokenizer's metrics on held-out frames, and one frame's decode time."""
    frames = load_frames(heldout)
    frames = frames[np.linspace(0, len(frames) - 1, min(limit_frames, len(frames))).astype(int)]
    tokens = tokenizer.encode(frames)
    preds = tokenizer.decode(tokens)
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
    return {**result, **code_changes(tokenizer, heldout, limit_frames)}


def patch_changes(frames: np.ndarray) -> np.ndarray:
    """(T, 105, 80) palette frames -> (T - 1, 140) bool: the tokens' 8x8 patches whose pixels
    differ from the frame before."""
    grid = patch_grid(frames)
    return (grid[1:] != grid[:-1]).any(axis=-1).reshape(len(frames) - 1, -1)


def code_changes(tokenizer: SkiingTokenizer, heldout: Path, limit_frames: int = 2000) -> dict:
    """How the codes of consecutive held-out frames follow their pixels. A dynamics model has
    to predict every code that changes, also one whose patch did not change: an encoder that
    sees past a token's own patch lets the changing HUD, or a skier a few patches away, reach it.

    - `still_code_change_by_token_row`: between frames identical below the HUD (the slope
      stands, only the timer and the gates left change), the share of each row of tokens
      whose code changes anyway (`still_pairs` such pairs);
    - `codes_changed_per_frame`, `patches_changed_per_frame`: over all consecutive pairs, how
      many codes change and how many 8x8 patches' pixels do;
    - `code_change_on_unchanged_patches`: the share of the patches whose pixels stand whose
      code changes all the same (0 for an encoder that sees only its own patch)."""
    code_changed, moved, still_steps = [], [], []
    paths = episode_paths(heldout)
    for path in paths:
        frames = load_episode(path)["frames"][:limit_frames // len(paths) + 1]
        if len(frames) < 2:
            continue
        tokens = tokenizer.encode(frames)
        code_changed.append(tokens[1:] != tokens[:-1])
        moved.append(patch_changes(frames))
        still_steps.append(still(frames))
    if not code_changed:
        return {"still_code_change_by_token_row": None, "still_pairs": 0, "codes_changed_per_frame": None,
                "patches_changed_per_frame": None, "code_change_on_unchanged_patches": None}
    code_changed, moved, still_steps = (np.concatenate(a) for a in (code_changed, moved, still_steps))
    by_row = code_changed[still_steps].mean(axis=(0, 2)) if still_steps.any() else None
    flat = code_changed.reshape(len(moved), -1)
    return {"still_code_change_by_token_row": None if by_row is None else [round(float(r), 4) for r in by_row],
            "still_pairs": int(still_steps.sum()),
            "codes_changed_per_frame": round(float(flat.sum(axis=1).mean()), 2),
            "patches_changed_per_frame": round(float(moved.sum(axis=1).mean()), 2),
            "code_change_on_unchanged_patches": round(float(flat[~moved].mean()), 4) if (~moved).any() else None}


def evaluate_checkpoint(folder: str | None, data_dir: Path, threads: int = 2) -> dict:
    tokenizer = SkiingTokenizer(folder, threads)
    return {"checkpoint": tokenizer.identity, "data": str(data_dir),
            **evaluate_tokenizer(tokenizer, data_dir / "heldout")}
