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
    n_layers: int = 5
    n_heads: int = 8
    d_ff: int = 256
    disc_d_model: int = 64
    disc_layers: int = 2
    noise_dim: int = N_PIECES
    columns: int = 0  # layers (the first ones) with a second stream of 10 column tokens the rows read from
    piece_from_noise: bool = False  # the model sees only the noise's argmax (one-hot), not its values


def rotary_tables(positions: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """cos and signed sin per (position, feature), and the pair-swapping permutation."""
    inv_freq = 1.0 / (10.0 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    angles = torch.arange(positions).float()[:, None] * inv_freq[None]
    cos = angles.cos().repeat_interleave(2, dim=-1)
    sin = torch.stack([-angles.sin(), angles.sin()], dim=-1).flatten(-2)
    swap = torch.arange(head_dim).view(-1, 2).flip(-1).flatten()
    return cos, sin, swap


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, swap: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding: attention then depends on how many rows apart two rows are,
    which is what drops and line clears are about. Each feature pair (a, b) turns into
    (a cos - b sin, a sin + b cos), written as one gather and two products (few ONNX ops)."""
    return x * cos + x[..., swap] * sin


class Block(nn.Module):
    """Pre-norm transformer block over the row (or column) tokens, rotary positions in the attention."""

    def __init__(self, d: int, heads: int, d_ff: int, positions: int = ROWS):
        super().__init__()
        self.d, self.heads, self.positions = d, heads, positions
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, d_ff), nn.GELU(), nn.Linear(d_ff, d))
        cos, sin, swap = rotary_tables(positions, d // heads)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.register_buffer("swap", swap, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, positions, d) -> the same shape. The linear layers and norms see the tokens as
        (B x positions, d) rows, with shapes from the config, not from x: exported, each linear
        layer is then one Gemm with its bias and no shape arithmetic, about 15% of a step at
        batch 1, where a step's time goes on the number of ops more than on arithmetic."""
        t, d, h = self.positions, self.d, self.heads
        rows = x.reshape(-1, d)
        qkv = self.qkv(self.norm1(rows)).reshape(-1, t, 3, h, d // h)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        q, k = rotate(q, self.cos, self.sin, self.swap), rotate(k, self.cos, self.sin, self.swap)
        att = (q @ k.transpose(-2, -1)) * (d // h) ** -0.5
        y = (att.softmax(dim=-1) @ v).transpose(1, 2).reshape(-1, d)
        rows = rows + self.proj(y)
        rows = rows + self.ff(self.norm2(rows))
        return rows.reshape(-1, t, d)


class CrossAttention(nn.Module):
    """Row tokens read from column tokens. The output projection starts at zero, so a model
    given this path starts exactly as the model without it (a warm start loses nothing)."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm_q, self.norm_kv = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.kv, self.proj = nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q = self.q(self.norm_q(x)).reshape(b, t, self.heads, -1).transpose(1, 2)
        k, v = self.kv(self.norm_kv(c)).reshape(b, c.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        att = (q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5
        y = att.softmax(dim=-1) @ v
        return x + self.proj(y.transpose(1, 2).reshape(b, t, d))


class ColumnStream(nn.Module):
    """The board read as 10 column tokens (a column's 44 bits), with blocks of their own and,
    after each row block, a cross-attention through which the rows read the columns. A column
    holds the falling piece's cells and the stack below them, which is what a drop needs."""

    def __init__(self, d: int, layers: int, heads: int, d_ff: int):
        super().__init__()
        self.embed = nn.Linear(CHANNELS * ROWS, d)
        self.pos = nn.Parameter(torch.randn(COLS, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, heads, d_ff, positions=COLS) for _ in range(layers))
        self.read = nn.ModuleList(CrossAttention(d, heads) for _ in range(layers))

    def tokens(self, boards: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b = boards.shape[0]
        cols = boards.permute(0, 3, 1, 2).reshape(b, COLS, -1)
        return self.embed(cols) + self.pos + context[:, None, :]


class RowEncoder(nn.Module):
    """Boards (B, C, ROWS, COLS) plus a per-example vector -> row tokens through blocks."""

    def __init__(self, in_channels: int, d: int, layers: int, heads: int, d_ff: int):
        super().__init__()
        self.embed = nn.Linear(in_channels * COLS, d)
        # Absolute rows too: rotary attention alone cannot tell one empty row from another,
        # and spawns (rows 0-1) and the floor are absolute places.
        self.pos = nn.Parameter(torch.randn(ROWS, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, heads, d_ff) for _ in range(layers))
        self.norm = nn.LayerNorm(d)

    def forward(self, boards: torch.Tensor, context: torch.Tensor,
                columns: ColumnStream | None = None) -> torch.Tensor:
        b = boards.shape[0]
        rows = boards.permute(0, 2, 1, 3).reshape(b, ROWS, -1)
        x = self.embed(rows) + self.pos + context[:, None, :]
        c = columns.tokens(boards, context) if columns is not None else None
        for i, block in enumerate(self.blocks):
            x = block(x)
            if columns is not None and i < len(columns.blocks):
                c = columns.blocks[i](c)
                x = columns.read[i](x, c)
        return self.norm(x)


class Generator(nn.Module):
    def __init__(self, cfg: TetrisGANConfig):
        super().__init__()
        self.cfg = cfg
        self.event = nn.Embedding(N_EVENTS, cfg.d_model)
        self.noise = nn.Sequential(nn.Linear(cfg.noise_dim, cfg.d_model), nn.GELU(),
                                   nn.Linear(cfg.d_model, cfg.d_model))
        self.rows = RowEncoder(CHANNELS, cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.d_ff)
        self.columns = ColumnStream(cfg.d_model, cfg.columns, cfg.n_heads, cfg.d_ff) if cfg.columns else None
        self.head = nn.Linear(cfg.d_model, CHANNELS * COLS)

    def forward(self, board: torch.Tensor, event: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """board (B, 2, 22, 10) in {0, 1}, event (B,) int64, noise (B, 7) -> logits (B, 2, 22, 10)."""
        if self.cfg.piece_from_noise:
            # Only the piece a spawn would bring: a step without a spawn then sees one of 7
            # inputs, not a continuum of noise values it must learn to ignore.
            noise = (noise == noise.amax(dim=-1, keepdim=True)).float()
        context = self.event(event) + self.noise(noise)
        tokens = self.rows(board.float(), context, self.columns)
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


def reconstruction_loss(logits: torch.Tensor, board: torch.Tensor, target: torch.Tensor,
                        changed_weight: float = 10.0) -> torch.Tensor:
    """BCE on every cell, with the cells that change (the few that carry the dynamics)
    weighted up: most of a board is copied, so an unweighted loss is dominated by copying."""
    weight = 1 + (changed_weight - 1) * (board != target).float()
    return F.binary_cross_entropy_with_logits(logits, target.float(), weight=weight)
