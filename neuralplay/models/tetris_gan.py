"""The Tetris world model: an action-conditioned GAN over the board.

Generator: (board, event, noise) -> logits of the next board. The board is read as 22 row
tokens (each row's settled and falling bits), the event and the noise are added to every
token, and a small transformer mixes the rows; this suits Tetris, whose rules move whole
rows (line clears) and move the piece along columns (drops). The noise is a vector of 7
Gumbel samples: spawns are the only randomness of the game, and a new piece is the argmax
of the noise. In training, where the spawned piece is known, the noise is drawn from its
posterior (the Gumbel-max trick with the spawned piece's component made the largest), so
a reconstruction loss can teach the generator what each noise value means; at play time the
noise is plain Gumbel noise and every piece comes with probability 1/7.

Discriminator: judges (board, event, next board) triples with the same row-token design.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

ROWS, COLS, CHANNELS = 22, 10, 2
N_EVENTS = 6
N_PIECES = 7


@dataclass
class TetrisGANConfig:
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 256
    disc_d_model: int = 64
    disc_layers: int = 2
    noise_dim: int = N_PIECES


class Block(nn.Module):
    """Pre-norm transformer block over the row tokens."""

    def __init__(self, d: int, heads: int, d_ff: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, d_ff), nn.GELU(), nn.Linear(d_ff, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.ff(self.norm2(x))


class RowEncoder(nn.Module):
    """Boards (B, C, ROWS, COLS) plus a per-example vector -> row tokens through blocks."""

    def __init__(self, in_channels: int, d: int, layers: int, heads: int, d_ff: int):
        super().__init__()
        self.embed = nn.Linear(in_channels * COLS, d)
        self.pos = nn.Parameter(torch.randn(ROWS, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, heads, d_ff) for _ in range(layers))
        self.norm = nn.LayerNorm(d)

    def forward(self, boards: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b = boards.shape[0]
        rows = boards.permute(0, 2, 1, 3).reshape(b, ROWS, -1)
        x = self.embed(rows) + self.pos + context[:, None, :]
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class Generator(nn.Module):
    def __init__(self, cfg: TetrisGANConfig):
        super().__init__()
        self.cfg = cfg
        self.event = nn.Embedding(N_EVENTS, cfg.d_model)
        self.noise = nn.Linear(cfg.noise_dim, cfg.d_model)
        self.rows = RowEncoder(CHANNELS, cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.d_ff)
        self.head = nn.Linear(cfg.d_model, CHANNELS * COLS)

    def forward(self, board: torch.Tensor, event: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """board (B, 2, 22, 10) in {0, 1}, event (B,) int64, noise (B, 7) -> logits (B, 2, 22, 10)."""
        context = self.event(event) + self.noise(noise)
        tokens = self.rows(board.float(), context)
        out = self.head(tokens).reshape(-1, ROWS, CHANNELS, COLS)
        return out.permute(0, 2, 1, 3)


class Discriminator(nn.Module):
    def __init__(self, cfg: TetrisGANConfig):
        super().__init__()
        d = cfg.disc_d_model
        self.event = nn.Embedding(N_EVENTS, d)
        self.rows = RowEncoder(2 * CHANNELS, d, cfg.disc_layers, 4, 2 * d)
        self.head = nn.Linear(d, 1)

    def forward(self, board: torch.Tensor, event: torch.Tensor, next_board: torch.Tensor) -> torch.Tensor:
        """A realness logit per example; next_board may be probabilities (B, 2, 22, 10)."""
        pair = torch.cat([board.float(), next_board.float()], dim=1)
        tokens = self.rows(pair, self.event(event))
        return self.head(tokens.mean(dim=1)).squeeze(-1)


def sample_noise(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Plain Gumbel noise (n, 7): what the generator gets at play time."""
    u = torch.rand(n, N_PIECES, generator=generator).clamp_(1e-9, 1 - 1e-9)
    return -torch.log(-torch.log(u))


def posterior_noise(spawn: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Gumbel noise conditioned on its argmax being the spawned piece (spawn = -1: unconditioned)."""
    g = sample_noise(len(spawn), generator)
    has = spawn >= 0
    if has.any():
        rows = torch.nonzero(has).squeeze(1)
        top = g[rows].argmax(dim=1)
        target = spawn[rows]
        top_val = g[rows, top].clone()
        g[rows, top] = g[rows, target]
        g[rows, target] = top_val
    return g


def bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, target.float())
