"""The Skiing tokenizer at play time: encoder and decoder graphs on onnxruntime (no torch)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neuralplay.runtime.checkpoint import Checkpoint, load_checkpoint, onnx_session

GAME = "skiing"
ENCODER_KIND = "skiing-vqvae-encoder"
DECODER_KIND = "skiing-vqvae-decoder"
ENCODER_NAME, DECODER_NAME = "skiing_tokenizer_encoder", "skiing_tokenizer_decoder"


BATCH = 64  # frames a graph runs at once: bounds the memory of encoding or decoding whole episodes


def in_batches(run, items: np.ndarray) -> np.ndarray:
    """`run` over items in slices of at most BATCH, the results joined (one run when they fit)."""
    if len(items) <= BATCH:
        return run(items)
    return np.concatenate([run(items[i:i + BATCH]) for i in range(0, len(items), BATCH)])


def radix(codes_per_group: int, groups: int) -> np.ndarray:
    """What each group's code index is worth in a token: K^(G-1), ..., K, 1 (a token of a
    product quantiser is idx_0 * K^(G-1) + ... + idx_(G-1); one group: the index itself)."""
    return codes_per_group ** np.arange(groups - 1, -1, -1, dtype=np.int64)


def token_codes(tokens: np.ndarray, codes_per_group: int, groups: int) -> np.ndarray:
    """Tokens (...) -> each group's code index (..., G)."""
    return tokens[..., None] // radix(codes_per_group, groups) % codes_per_group


class SkiingTokenizer:
    """frames (B, 105, 80) palette indices <-> tokens (B, 14, 10).

    `folder` holds the two graphs and their metadata (default: the shipped checkpoints)."""

    def __init__(self, folder: str | Path | None = None, threads: int = 1):
        fix = ("pass the folder of a Skiing tokenizer's graphs, or make one with `neuralplay train "
               "skiing-tokenizer` and `neuralplay export skiing-tokenizer`")

        def load(name: str, kind: str) -> Checkpoint:
            return load_checkpoint(Path(folder) / f"{name}.json" if folder else None, GAME, kind, name, fix)

        self.encoder_ckpt = load(ENCODER_NAME, ENCODER_KIND)
        self.decoder_ckpt = load(DECODER_NAME, DECODER_KIND)
        self._enc = onnx_session(self.encoder_ckpt.onnx_path, threads)
        self._dec = onnx_session(self.decoder_ckpt.onnx_path, threads)
        tokens = self.encoder_ckpt.meta["tokens"]
        self.codebook_size = int(tokens["codebook_size"])  # how many token values there are
        self.groups = int(tokens.get("groups", 1))  # a product quantiser's codebooks, each of:
        self.codes_per_group = int(tokens.get("codes_per_group", self.codebook_size))
        self.grid = tuple(int(n) for n in tokens["grid"])  # rows and columns of tokens a frame

    @property
    def identity(self) -> list[str]:
        return [self.encoder_ckpt.identity, self.decoder_ckpt.identity]

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """Palette frames (T, 105, 80) -> tokens (T, 14, 10), at most BATCH frames a run."""
        return in_batches(lambda batch: self._enc.run(None, {"frames": np.ascontiguousarray(batch, np.uint8)})[0],
                          frames)

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """Tokens (T, 14, 10) -> palette frames (T, 105, 80), at most BATCH a run."""
        return in_batches(lambda batch: self._dec.run(None, {"tokens": np.ascontiguousarray(batch, np.int64)})[0],
                          tokens)
