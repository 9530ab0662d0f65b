"""The Skiing tokenizer: a VQ-VAE over palette frames, with an EMA codebook and dead-code restarts.

A frame is 105x80 palette indices (half the native 210x160); it is padded to 112x80 and
read as one-hot colours. The encoder downsamples by 8 to a 14x10 grid (140 tokens), each
vector snapped to the nearest of `codebook_size` codes; the decoder maps the codes back to
logits over the palette for every pixel, so reconstruction is a classification (palette-
exact by construction) trained with cross-entropy, with the rare non-snow pixels weighted up.
Up- and downsampling are 2x2 stride-2 convolutions, which keeps the decoder to a few ms on a CPU.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from neuralplay.games.skiing import SKIER

FRAME = (105, 80)
PADDED = (112, 80)
PATCH = 8  # pixels a token covers each way: the encoder downsamples by 8


def token_rows(pixel_rows: int) -> int:
    """How many rows of tokens cover the top `pixel_rows` rows of a frame."""
    return -(-pixel_rows // PATCH)


def patch_grid(frames: np.ndarray) -> np.ndarray:
    """(T, 105, 80) palette frames -> (T, 14, 10, 64): each token's 8x8 patch of pixels, the
    frames padded with snow below as the encoder pads them."""
    padded = np.zeros((len(frames), *PADDED), frames.dtype)
    padded[:, :frames.shape[1]] = frames
    rows, cols = PADDED[0] // PATCH, PADDED[1] // PATCH
    return padded.reshape(len(frames), rows, PATCH, cols, PATCH).transpose(0, 1, 3, 2, 4).reshape(
        len(frames), rows, cols, PATCH * PATCH)


@dataclass
class VQVAEConfig:
    n_colours: int = 10
    channels: tuple[int, int, int] = (64, 96, 128)  # at 1/2, 1/4, 1/8 of the resolution
    code_dim: int = 32
    codebook_size: int = 512  # codes per group
    groups: int = 1  # >1: a product quantiser of `groups` codebooks (codebook_size ** groups tokens)
    ema_decay: float = 0.99
    commitment: float = 0.25
    background_weight: float = 1.0  # loss weight of snow pixels
    object_weight: float = 5.0  # loss weight of every other colour
    skier_weight: float = 20.0  # loss weight of the skier's colour (its pixels are 0.2% of a frame)
    hud_band: int = 0  # rows of tokens at the top coded apart from the rest (the HUD's), or 0: one frame
    local_encoder: bool = False  # the encoder sees only a token's own 8x8 patch (its residual blocks are 1x1)


class ResBlock(nn.Module):
    def __init__(self, c: int, kernel: int = 3):
        super().__init__()
        self.net = nn.Sequential(nn.GELU(), nn.Conv2d(c, c, kernel, padding=kernel // 2), nn.GELU(), nn.Conv2d(c, c, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class Encoder(nn.Module):
    """With `local_encoder`, every convolution sees only pixels of one 8x8 patch (the 2x2
    stride-2 ones do not overlap, the rest are 1x1), so a token's code is a function of its
    patch alone: it changes only when the patch's pixels do. With 3x3 convolutions at 1/2,
    1/4 and 1/8 of the resolution a code also follows pixels tens of rows away, such as the
    HUD's timer, which changes every step; the dynamics model then has to predict codes that
    change while their patch stands still."""

    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        c, k = cfg.channels, 1 if cfg.local_encoder else 3
        self.net = nn.Sequential(
            nn.Conv2d(cfg.n_colours, c[0], 2, stride=2), ResBlock(c[0], k),
            nn.GELU(), nn.Conv2d(c[0], c[1], 2, stride=2), ResBlock(c[1], k),
            nn.GELU(), nn.Conv2d(c[1], c[2], 2, stride=2), ResBlock(c[2], k), ResBlock(c[2], k),
            nn.GELU(), nn.Conv2d(c[2], cfg.code_dim, 1),
        )

    def forward(self, onehot: torch.Tensor) -> torch.Tensor:
        return self.net(onehot)


class Decoder(nn.Module):
    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        c = cfg.channels
        self.net = nn.Sequential(
            nn.Conv2d(cfg.code_dim, c[2], 3, padding=1), ResBlock(c[2]), ResBlock(c[2]),
            nn.GELU(), nn.ConvTranspose2d(c[2], c[1], 2, stride=2), ResBlock(c[1]),
            nn.GELU(), nn.ConvTranspose2d(c[1], c[0], 2, stride=2),
            nn.GELU(), nn.ConvTranspose2d(c[0], cfg.n_colours, 2, stride=2),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def radix(codes_per_group: int, groups: int) -> torch.Tensor:
    """What each group's code index is worth in a token: K^(G-1), ..., K, 1."""
    return codes_per_group ** torch.arange(groups - 1, -1, -1)


def token_codes(tokens: torch.Tensor, codes_per_group: int, groups: int) -> torch.Tensor:
    """Tokens (...) -> each group's code index (..., G): a token is idx_0 * K^(G-1) + ... + idx_(G-1)."""
    return torch.div(tokens[..., None], radix(codes_per_group, groups).to(tokens.device),
                     rounding_mode="floor") % codes_per_group


class EMACodebook(nn.Module):
    """Vector quantisation with codes updated as moving averages of what they quantise;
    codes that fall out of use are restarted on random encoder outputs of the batch.

    With `groups` > 1 it is a product quantiser: the vector is cut into `groups` equal parts,
    each snapped to its own codebook of `codebook_size` codes, and the token is the tuple of
    their indices, numbered idx_0 * K^(G-1) + ... + idx_(G-1) (K^G token values). Parts can
    combine in ways the training frames never showed, such as a skier pose at a new offset
    beside a new flag, which one code per position cannot."""

    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        if cfg.code_dim % cfg.groups:
            raise ValueError(f"code_dim {cfg.code_dim} does not split into {cfg.groups} groups")
        self.decay, self.groups, self.size = cfg.ema_decay, cfg.groups, cfg.codebook_size
        codes = torch.randn(cfg.groups, cfg.codebook_size, cfg.code_dim // cfg.groups) * 0.1
        self.register_buffer("codes", codes)
        self.register_buffer("ema_sum", codes.clone())
        # Zero counts: on the first batch every code counts as dead and restarts on an encoder
        # output, a data-dependent initialisation.
        self.register_buffer("ema_count", torch.zeros(cfg.groups, cfg.codebook_size))
        self.register_buffer("radix", radix(cfg.codebook_size, cfg.groups), persistent=False)

    @property
    def vocabulary(self) -> int:
        """How many token values there are: K^G."""
        return self.size ** self.groups

    def nearest(self, parts: torch.Tensor) -> torch.Tensor:
        """parts (N, G, D/G) -> each part's nearest code (N, G)."""
        dist = (parts.pow(2).sum(-1, keepdim=True) - 2 * torch.einsum("ngd,gkd->ngk", parts, self.codes)
                + self.codes.pow(2).sum(-1)[None])
        return dist.argmin(dim=-1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (B, D, H, W) -> (quantised z with straight-through gradient, tokens (B, H, W)).
        Always in fp32, also under bf16 autocast: nearest codes and their moving averages
        need the precision."""
        with torch.autocast(z.device.type, enabled=False):
            return self._quantise(z.float())

    def _quantise(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, d, h, w = z.shape
        parts = z.permute(0, 2, 3, 1).reshape(-1, self.groups, d // self.groups)
        idx = self.nearest(parts)
        if self.training:
            self._update(parts.detach(), idx)
        tokens = (idx * self.radix).sum(-1).reshape(b, h, w)
        q = self.lookup(tokens)
        return z + (q - z).detach(), tokens

    @torch.no_grad()
    def _update(self, parts: torch.Tensor, idx: torch.Tensor) -> None:
        for g in range(self.groups):
            flat = parts[:, g]
            onehot = F.one_hot(idx[:, g], self.size).type_as(flat)
            count, total, codes = self.ema_count[g], self.ema_sum[g], self.codes[g]
            count.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
            total.mul_(self.decay).add_(onehot.t() @ flat, alpha=1 - self.decay)
            n = count.sum()
            smoothed = (count + 1e-5) / (n + self.size * 1e-5) * n
            codes.copy_(total / smoothed[:, None])
            dead = count < 1e-2
            if dead.any():
                pick = torch.randint(0, len(flat), (int(dead.sum()),))
                # A little noise, so that codes restarted on equal vectors (plain snow) do not tie.
                fresh = flat[pick] + 0.01 * flat.std() * torch.randn(len(pick), flat.shape[1])
                codes[dead] = fresh
                total[dead] = fresh
                count[dead] = 1.0

    def split(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens (...) -> each group's code index (..., G)."""
        return token_codes(tokens, self.size, self.groups)

    def lookup(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens (B, H, W) -> code vectors (B, D, H, W)."""
        idx = self.split(tokens)
        parts = [self.codes[g][idx[..., g]] for g in range(self.groups)]
        return torch.cat(parts, dim=-1).permute(0, 3, 1, 2)


def one_hot_frames(frames: torch.Tensor, n_colours: int) -> torch.Tensor:
    """(B, 105, 80) palette indices -> (B, C, 112, 80) one-hot, padded with snow (0) below."""
    pad = PADDED[0] - frames.shape[1]
    frames = F.pad(frames.long(), (0, 0, 0, pad))
    return F.one_hot(frames, n_colours).permute(0, 3, 1, 2).float()


class VQVAE(nn.Module):
    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.codebook = EMACodebook(cfg)
        self.decoder = Decoder(cfg)

    def latents(self, onehot: torch.Tensor) -> torch.Tensor:
        """One-hot frames (B, C, 112, 80) -> code vectors before quantising (B, D, 14, 10).
        With a HUD band, the band and the slope below it are encoded apart: the encoder
        sees well past a token's own 8x8 patch, and the timer, which changes every step,
        would otherwise change the codes of the slope's top rows (where the skier is) while
        the slope stands still."""
        if not self.cfg.hud_band:
            return self.encoder(onehot)
        cut = self.cfg.hud_band * PATCH
        return torch.cat([self.encoder(onehot[:, :, :cut]), self.encoder(onehot[:, :, cut:])], dim=2)

    def logits(self, q: torch.Tensor) -> torch.Tensor:
        """Code vectors (B, D, 14, 10) -> palette logits (B, C, 112, 80); the HUD band, if
        any, decoded apart from the slope, as it was encoded."""
        if not self.cfg.hud_band:
            return self.decoder(q)
        band = self.cfg.hud_band
        return torch.cat([self.decoder(q[:, :, :band]), self.decoder(q[:, :, band:])], dim=2)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 105, 80) palette indices -> token indices (B, 14, 10)."""
        return self.codebook(self.latents(one_hot_frames(frames, self.cfg.n_colours)))[1]

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token indices (B, 14, 10) -> palette logits (B, C, 105, 80)."""
        return self.logits(self.codebook.lookup(tokens))[:, :, :FRAME[0]]

    def decode_indices(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token indices (B, 14, 10) -> palette indices (B, 105, 80) uint8, as played."""
        return self.decode(tokens).argmax(dim=1).to(torch.uint8)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (palette logits (B, C, 105, 80), token indices, loss)."""
        z = self.latents(one_hot_frames(frames, self.cfg.n_colours)).float()
        q, idx = self.codebook(z)
        logits = self.logits(q)[:, :, :FRAME[0]].float()
        target = frames.long()
        weight = torch.where(target == 0, self.cfg.background_weight, self.cfg.object_weight)
        weight = torch.where(target == SKIER, self.cfg.skier_weight, weight)
        recon = (F.cross_entropy(logits, target, reduction="none") * weight).mean()
        commit = F.mse_loss(z, q.detach())
        return logits, idx, recon + self.cfg.commitment * commit
