"""Evaluate the exported Skiing tokenizer with onnxruntime on held-out episodes."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from neuralplay.runtime.checkpoint import load_checkpoint, onnx_session
from neuralplay.training.skiing_data import load_frames
from neuralplay.training.skiing_tokenizer import (
    DECODER_KIND, ENCODER_KIND, GAME, reconstruction_metrics,
)


def evaluate_graphs(enc_path: Path, dec_path: Path, heldout: Path, codebook_size: int,
                    threads: int = 2, limit_frames: int = 2000) -> dict:
    """The tokenizer's metrics on held-out frames, and one frame's decode time."""
    frames = load_frames(heldout)
    frames = frames[np.linspace(0, len(frames) - 1, min(limit_frames, len(frames))).astype(int)]
    enc, dec = onnx_session(enc_path, threads), onnx_session(dec_path, threads)
    tokens = np.concatenate([enc.run(None, {"frames": frames[i:i + 64]})[0] for i in range(0, len(frames), 64)])
    preds = np.concatenate([dec.run(None, {"tokens": tokens[i:i + 64]})[0] for i in range(0, len(tokens), 64)])
    result = reconstruction_metrics(preds, frames, tokens, codebook_size)
    times = []
    one = tokens[:1]
    for _ in range(20):
        dec.run(None, {"tokens": one})
    for i in range(200):
        t = time.perf_counter()
        dec.run(None, {"tokens": tokens[i % len(tokens)][None]})
        times.append(time.perf_counter() - t)
    result["decode_ms_p50"] = round(float(np.percentile(times, 50)) * 1e3, 3)
    result["frames_evaluated"] = int(len(frames))
    return result


def evaluate_checkpoint(spec: str | None, data_dir: Path, threads: int = 2) -> dict:
    base = Path(spec) if spec else None
    enc = load_checkpoint(base / "skiing_tokenizer_encoder.json" if base else None, GAME, ENCODER_KIND,
                          "skiing_tokenizer_encoder")
    dec = load_checkpoint(base / "skiing_tokenizer_decoder.json" if base else None, GAME, DECODER_KIND,
                          "skiing_tokenizer_decoder")
    return {"checkpoint": [enc.identity, dec.identity], "data": str(data_dir),
            **evaluate_graphs(enc.onnx_path, dec.onnx_path, data_dir / "heldout",
                              enc.meta["tokens"]["codebook_size"], threads)}
