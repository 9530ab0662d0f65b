"""The Skiing dynamics model: a spatiotemporal transformer over tokenizer codes, trained with
MaskGIT's masked-token objective.

A clip is T frames of H x W tokens and the T-1 actions between them. Each block has spatial
attention (all tokens of one frame), causal temporal attention (one grid position across
the frames up to now) and a feed-forward. The action that led to a frame is added to all of
its tokens. Training masks a share gamma(r) = cos(pi r / 2), r ~ U(0, 1), of the last
frame's tokens and predicts them from the clean frames before it and the unmasked rest; or
of every frame's, each predicted from the clean frames before it, through a second, masked
stream beside the clean one (`STBlock.two_stream`), so a clip gives T - 1 predictions.

Because temporal attention is causal and the past frames are clean, what a past frame
contributes to every layer (its temporal keys and values) never changes once the frame is
known: `step()` runs only the new frame's tokens against a cache of those keys and values,
and `prefill()` builds the cache from real frames, which is what makes several MaskGIT
steps a frame affordable. Time enters temporal attention as rotary positions, so only how
many frames apart two frames are matters: the cache holds keys before rotation and each
step rotates them to their place in the window, so a rolling cache of `context - 1`
frames stays exact however long the game runs.

With `skier_motion`, the skier's column is given, not left to the tokens: every frame is
conditioned on where its skier is (each grid column learns the skier's offset from it), and
a velocity head reads a finished frame and says how far the skier moves sideways by the
next one under each action. A runtime integrates those velocities as floats and conditions
the next frame on the result, so motion slower than a pixel a step adds up instead of being
rounded to "stay" by the most likely tokens; the head also reads the skier's recent motion
(`runtime.skiing.recent_motion`), which carries its momentum through frames whose slope stood still.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from neuralplay.models.vqvae import PATCH, token_codes

SKIER_REACH = 16.0  # pixels: a grid column sees the skier's offset from its centre up to this far
SKIER_BINS_PER_PX = 2  # offsets in half pixels


@dataclass
class STConfig:
    codebook_size: int = 512  # token values: codes_per_group ** groups
    groups: int = 1  # a product-quantised tokenizer's codebooks: a token is one code of each
    grid: tuple[int, int] = (14, 10)
    n_actions: int = 3
    context: int = 4  # frames the model sees, the predicted one included
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 512
    change_weight: float = 1.0  # loss weight of tokens that differ from the frame before (the dynamics)
    skier_weight: float = 1.0  # loss weight (times the above) of tokens that show the skier, now or in the frame before
    hud_weight: float = 1.0  # loss weight (times the above) of the tokens of the HUD's rows (gates left, the timer)
    skier_motion: bool = False  # condition frames on the skier's column and predict its velocity (module docstring)
    velocity_weight: float = 1.0  # loss weight of the velocity head's squared error (pixels per step, squared)

    @property
    def mask_id(self) -> int:
        return self.codebook_size

    @property
    def tokens(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def codes_per_group(self) -> int:
        k = round(self.codebook_size ** (1 / self.groups))
        if k ** self.groups != self.codebook_size:
            raise ValueError(f"{self.codebook_size} token values are not {self.groups} groups of equal codebooks")
        return k


def group_codes(tokens: torch.Tensor, cfg: STConfig) -> torch.Tensor:
    """Tokens (...) -> each group's code (..., G), numbered as the tokenizer numbers them;
    the mask token gives K in every group."""
    k = cfg.codes_per_group
    return torch.where(tokens[..., None] == cfg.mask_id, k, token_codes(tokens, k, cfg.groups))


def rotary(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Rotate (..., T, dh) by the times t (T,): rotary position embedding over time."""
    dh = x.shape[-1]
    inv_freq = 1.0 / (100.0 ** (torch.arange(0, dh, 2, dtype=torch.float32) / dh))
    angles = t.float()[:, None] * inv_freq[None]
    cos, sin = angles.cos(), angles.sin()
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


def skier_offset_bins(columns: torch.Tensor, grid_cols: int) -> torch.Tensor:
    """The skier's column (...,) (negative where unknown) -> each grid column's bin of its
    offset from that column's centre (..., grid_cols); unknown gets the last bin."""
    centres = (torch.arange(grid_cols, dtype=torch.float32) + 0.5) * PATCH
    offset = (columns[..., None] - centres).clamp(-SKIER_REACH, SKIER_REACH)
    bins = torch.round((offset + SKIER_REACH) * SKIER_BINS_PER_PX).long()
    return torch.where(columns[..., None] < 0, skier_bins() - 1, bins)


def skier_bins() -> int:
    """Offset bins (-SKIER_REACH..SKIER_REACH in half pixels) and one for "unknown"."""
    return int(2 * SKIER_REACH * SKIER_BINS_PER_PX) + 2


class Attention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, d)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.reshape(b, n, self.heads, d // self.heads).transpose(1, 2)

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.kv(x).chunk(2, dim=-1)
        return self.split(k), self.split(v)

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                t: torch.Tensor | None = None, allowed: torch.Tensor | None = None) -> torch.Tensor:
        """Attention of x over (k, v); with times t, rotary positions: queries at the last
        len(x) times of t, keys at all of t; `allowed` (queries, keys) bool: which keys a
        query may see."""
        q = self.split(self.q(x))
        if t is not None:
            q, k = rotary(q, t[-q.shape[2]:]), rotary(k, t)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, is_causal=causal)
        b, h, n, dh = y.shape
        return self.out(y.transpose(1, 2).reshape(b, n, h * dh))


class STBlock(nn.Module):
    def __init__(self, cfg: STConfig):
        super().__init__()
        d = cfg.d_model
        self.norm_s, self.spatial = nn.LayerNorm(d), Attention(d, cfg.n_heads)
        self.norm_t, self.temporal = nn.LayerNorm(d), Attention(d, cfg.n_heads)
        self.norm_f = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, d))

    def spatial_ff(self, x: torch.Tensor) -> torch.Tensor:
        """x (B*T, N, d): attention within each frame."""
        h = self.norm_s(x)
        return x + self.spatial(h, *self.spatial.keys_values(h))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x (B, T, N, d), all frames at once (training, prefill). Also returns the temporal
        keys/values (B*N, heads, T, dh), unrotated, as the cache holds them."""
        b, t, n, d = x.shape
        times = torch.arange(t)
        x = self.spatial_ff(x.reshape(b * t, n, d)).reshape(b, t, n, d)
        h = self.norm_t(x).transpose(1, 2).reshape(b * n, t, d)
        k, v = self.temporal.keys_values(h)
        y = self.temporal(h, k, v, causal=True, t=times)
        x = x + y.reshape(b, n, t, d).transpose(1, 2)
        return x + self.ff(self.norm_f(x)), (k, v)

    def two_stream(self, clean: torch.Tensor, masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The clip's clean frames and the same frames partly masked, both (B, T, N, d). A
        clean frame attends in time to the clean frames up to it (as `forward`); a masked
        frame to the clean frames before it and to itself, which is what `step` does with a
        cache, so one pass predicts every frame of the clip."""
        b, t, n, d = clean.shape
        both = self.spatial_ff(torch.cat([clean, masked]).reshape(2 * b * t, n, d)).reshape(2 * b, t, n, d)
        h = self.norm_t(both).transpose(1, 2).reshape(2 * b * n, t, d)
        k, v = self.temporal.keys_values(h)
        h_clean, h_masked = h.chunk(2)
        (k_clean, k_masked), (v_clean, v_masked) = k.chunk(2), v.chunk(2)
        times = torch.arange(t)
        y_clean = self.temporal(h_clean, k_clean, v_clean, causal=True, t=times)
        earlier = times[None, :] < times[:, None]
        allowed = torch.cat([earlier, torch.eye(t, dtype=torch.bool)], dim=1)  # (T, 2T): clean before, self
        y_masked = self.temporal(h_masked, torch.cat([k_clean, k_masked], 2), torch.cat([v_clean, v_masked], 2),
                                 t=torch.cat([times, times]), allowed=allowed)
        x = both + torch.cat([y_clean, y_masked]).reshape(2 * b, n, t, d).transpose(1, 2)
        x = x + self.ff(self.norm_f(x))
        return x[:b], x[b:]

    def step(self, x: torch.Tensor, past_k: torch.Tensor, past_v: torch.Tensor):
        """One frame x (B, N, d) after cached past temporal keys/values (B*N, heads, P, dh).
        Returns the frame's output and its own temporal keys/values."""
        b, n, d = x.shape
        times = torch.arange(past_k.shape[2] + 1)
        x = self.spatial_ff(x)
        h = self.norm_t(x).reshape(b * n, 1, d)
        k, v = self.temporal.keys_values(h)
        keys, values = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)
        x = x + self.temporal(h, keys, values, t=times).reshape(b, n, d)
        return x + self.ff(self.norm_f(x)), k, v


class STTransformer(nn.Module):
    def __init__(self, cfg: STConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        # One table of K + 1 rows (the codes and "masked") per group; a token's embedding is the
        # sum of its groups' rows. The head predicts each group's code: G x K logits, not K^G.
        self.token = nn.Embedding(cfg.groups * (cfg.codes_per_group + 1), d)
        self.register_buffer("group_offset", torch.arange(cfg.groups) * (cfg.codes_per_group + 1),
                             persistent=False)
        self.pos = nn.Parameter(torch.randn(cfg.tokens, d) * 0.02)
        self.action = nn.Embedding(cfg.n_actions + 1, d)  # index n_actions: "no action" (first frame)
        self.blocks = nn.ModuleList(STBlock(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg.groups * cfg.codes_per_group)
        if cfg.skier_motion:
            self.skier_at = nn.Embedding(skier_bins(), d)
            nn.init.zeros_(self.skier_at.weight)  # a warm start begins as the model it came from
            self.norm_v = nn.LayerNorm(d)
            self.pool = nn.Linear(d, 1)
            self.recent = nn.Linear(1, d)
            self.velocity = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, cfg.n_actions))

    def embed(self, tokens: torch.Tensor, actions: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (B, [T,] N), actions (B, [T]) that led to each frame; with skier_motion, the
        skier's column in each frame (B, [T]), negative where unknown."""
        rows = group_codes(tokens, self.cfg) + self.group_offset
        x = self.token(rows).sum(dim=-2) + self.pos + self.action(actions)[..., None, :]
        if not self.cfg.skier_motion:
            return x
        grid_rows, grid_cols = self.cfg.grid
        per_column = self.skier_at(skier_offset_bins(columns.float(), grid_cols))  # (B, [T,] cols, d)
        return x + per_column[..., None, :, :].expand(*per_column.shape[:-2], grid_rows, grid_cols,
                                                      per_column.shape[-1]).flatten(-3, -2)

    def velocities(self, states: torch.Tensor, recent: torch.Tensor) -> torch.Tensor:
        """A finished frame's last-layer states (..., N, d) and the skier's recent motion
        (...,) -> how far its column moves by the next frame under each action (..., n_actions)."""
        h = self.norm_v(states)
        weights = torch.softmax(self.pool(h), dim=-2)
        return self.velocity((weights * h).sum(dim=-2) + self.recent(recent[..., None].float()))

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """The last layer's states (..., d) -> logits (..., G * K): each group's K code logits
        side by side."""
        return self.head(self.norm(states))

    def states(self, tokens: torch.Tensor, actions: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (B, T, N) (mask_id where masked), actions (B, T) and with skier_motion the
        skier's columns (B, T) -> the last layer's states (B, T, N, d)."""
        x = self.embed(tokens, actions, columns)
        for block in self.blocks:
            x, _ = block(x)
        return x

    def forward(self, tokens: torch.Tensor, actions: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (B, T, N) (mask_id where masked), actions (B, T) and with skier_motion the
        skier's columns (B, T) -> logits (B, T, N, G * K)."""
        return self.logits(self.states(tokens, actions, columns))

    def every_frame_states(self, tokens: torch.Tensor, masked_tokens: torch.Tensor, actions: torch.Tensor,
                           columns: torch.Tensor | None = None,
                           masked_columns: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The last layer's states (B, T, N, d) of every frame of a clip, clean (from its
        tokens and the clean frames before) and masked (from its partly masked tokens (B, T, N)
        and the clean frames before it: `STBlock.two_stream`); with skier_motion, each stream's
        skier columns (the masked one's default: the clean one's)."""
        masked_columns = columns if masked_columns is None else masked_columns
        clean, masked = self.embed(tokens, actions, columns), self.embed(masked_tokens, actions, masked_columns)
        for block in self.blocks:
            clean, masked = block.two_stream(clean, masked)
        return clean, masked

    def mask_frames(self, frames: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Which tokens of `frames` frames to mask (frames, N): a share gamma(r), r ~ U(0, 1),
        drawn for each frame."""
        n = self.cfg.tokens
        r = torch.rand(frames, 1, generator=generator)
        share = torch.cos(math.pi / 2 * r).clamp(min=1 / n)
        return torch.rand(frames, n, generator=generator) < share

    def loss(self, tokens: torch.Tensor, actions: torch.Tensor, generator: torch.Generator | None = None,
             regions: dict[str, torch.Tensor] | None = None, every_frame: bool = False,
             context: torch.Tensor | None = None, columns: torch.Tensor | None = None,
             recent: torch.Tensor | None = None,
             context_columns: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """MaskGIT objective: mask a cosine-scheduled share of the last frame's tokens and
        predict them from the rest and the clean frames before; with every_frame, the same
        for each frame after the first (`every_frame_states`), T - 1 predictions a clip.
        regions: name -> (B, T, N) bool, tokens whose loss counts cfg.<name>_weight times
        ("skier": where the skier is or was, "hud": the HUD's rows).
        context: what the model reads of the past frames in place of `tokens` (B, T, N), e.g.
        frames with the errors of an open loop in them; the frames it predicts show their own
        real unmasked tokens, and the targets stay `tokens` (default: `tokens` itself).
        A changing token is one that differs from the frame before as the model reads it (with
        a context, the context's): what it must draw anew, catching up where the context fell behind.
        With skier_motion: the skier's column in each frame (B, T) (negative where unknown)
        and its recent motion (B, T) (`runtime.skiing.recent_motion`); context_columns: the
        past frames' columns as the model reads them, with `context` (default: `columns`).
        The velocity head, reading each past frame as shown, is fitted to the real column
        change to the next frame under the action taken, which adds velocity_weight times its
        squared error.
        Returns the loss and the accuracies of the masked tokens: all, the changing ones
        (where there are any), and each region's; with skier_motion, the velocity's mean
        absolute error in pixels."""
        regions = regions or {}
        b, t, n = tokens.shape
        first = 1 if every_frame else t - 1
        masked = torch.zeros_like(tokens, dtype=torch.bool)
        masked[:, first:] = self.mask_frames(b * (t - first), generator).reshape(b, t - first, n)
        seen = tokens if context is None else context
        seen_columns = columns if context_columns is None else context_columns
        predicted = torch.zeros_like(masked)
        predicted[:, first:] = True
        inp = torch.where(predicted, tokens, seen).masked_fill(masked, self.cfg.mask_id)
        if every_frame:
            clean, states = self.every_frame_states(seen, inp, actions, seen_columns, columns)
        else:
            shown_columns = None if columns is None else torch.where(predicted[..., 0], columns, seen_columns)
            clean = states = self.states(inp, actions, shown_columns)  # frames before the last are clean
        k = self.cfg.codes_per_group
        # The head (G x K logits a token) only where the loss looks, not on every token of every frame.
        logits = self.logits(states[masked]).reshape(-1, self.cfg.groups, k)
        target = group_codes(tokens[masked], self.cfg)
        per_token = F.cross_entropy(logits.reshape(-1, k), target.reshape(-1), reduction="none")
        changed = torch.zeros_like(masked)
        changed[:, 1:] = tokens[:, 1:] != seen[:, :-1]
        # Most tokens repeat the frame before; what moves (the slope, the skier, the timer) is
        # what the model is for, and changing tokens may count more. The skier and the timer
        # are a few tokens of 140, and what a player reads.
        weight = torch.where(changed[masked], self.cfg.change_weight, 1.0)
        right = (logits.argmax(-1) == target).all(-1).float()
        stats = {"masked_token_accuracy": right.mean()}
        if changed[masked].any():  # copying the frame before gets every one of these wrong
            stats["changed_token_accuracy"] = right[changed[masked]].mean()
        for name, region in regions.items():
            weight = weight * torch.where(region[masked], getattr(self.cfg, f"{name}_weight"), 1.0)
            stats[f"{name}_token_accuracy"] = right[region[masked]].mean()
        loss = (per_token.reshape(-1, self.cfg.groups).mean(-1) * weight).sum() / weight.sum()
        if self.cfg.skier_motion:
            error = self.velocity_error(clean[:, :-1], recent[:, :-1], actions[:, 1:], columns)
            if error is not None:
                loss = loss + self.cfg.velocity_weight * error.square().mean()
                stats["velocity_mae_px"] = error.abs().mean()
        return loss, stats

    def velocity_error(self, states: torch.Tensor, recent: torch.Tensor, next_actions: torch.Tensor,
                       columns: torch.Tensor) -> torch.Tensor | None:
        """Predicted minus real column change to the next frame under the action taken, for
        the frames (B, T-1) whose skier and next skier are known; None if there are none."""
        predicted = self.velocities(states, recent).gather(-1, next_actions[..., None])[..., 0]
        known = (columns[:, :-1] >= 0) & (columns[:, 1:] >= 0)
        if not known.any():
            return None
        return (predicted - (columns[:, 1:] - columns[:, :-1]))[known]

    # --- inference with the cache of past frames ---

    def prefill(self, tokens: torch.Tensor, actions: torch.Tensor, columns: torch.Tensor | None = None,
                recent: torch.Tensor | None = None):
        """The cache of real frames: tokens (B, P, N), actions (B, P) -> keys and values of
        every layer stacked as (layers, 2, B*N, heads, P, dh). With skier_motion, also the
        skier's columns (B, P) and the last frame's recent motion (B,) in, and the last
        frame's velocities (B, n_actions) out: (cache, velocities)."""
        x = self.embed(tokens, actions, columns)
        cache = []
        for block in self.blocks:
            x, (k, v) = block(x)
            cache.append(torch.stack([k, v]))
        if self.cfg.skier_motion:
            return torch.stack(cache), self.velocities(x[:, -1], recent)
        return torch.stack(cache)

    def step(self, tokens: torch.Tensor, action: torch.Tensor, cache: torch.Tensor,
             column: torch.Tensor | None = None, recent: torch.Tensor | None = None):
        """One frame's logits (B, N, G * K) from its (partly masked) tokens (B, N), the
        action that led to it (B,) and the cache of the frames before it; also the frame's own
        keys/values (layers, 2, B*N, heads, 1, dh), for `append` once the frame is final.
        With skier_motion, also the frame's skier column (B,) and recent motion (B,) in, and
        its velocities (B, n_actions) out, which mean something once the frame is final:
        (logits, new, velocities)."""
        x = self.embed(tokens, action, column)
        new = []
        for i, block in enumerate(self.blocks):
            x, k_new, v_new = block.step(x, cache[i, 0], cache[i, 1])
            new.append(torch.stack([k_new, v_new]))
        if self.cfg.skier_motion:
            return self.logits(x), torch.stack(new), self.velocities(x, recent)
        return self.logits(x), torch.stack(new)

    def append(self, cache: torch.Tensor, new: torch.Tensor, keep: int | None = None) -> torch.Tensor:
        """Add a finished frame's keys/values to the cache, keeping the last `keep` frames."""
        keep = keep or self.cfg.context - 1
        return torch.cat([cache, new], dim=4)[:, :, :, :, -keep:]
