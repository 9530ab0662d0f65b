"""Atari Skiing, the real game: ALE `ALE/Skiing-v5` through gymnasium + ale-py (the ROM ships
inside ale-py), frames as palette images, and simple players.

Skiing is deterministic with `repeat_action_probability=0`: a seed and the actions replay a
session exactly. Actions: 0 NOOP, 1 RIGHT, 2 LEFT. Reward is minus the elapsed time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neuralplay.errors import UserError

ENV_ID = "ALE/Skiing-v5"
NATIVE = (210, 160)
ACTIONS = ("noop", "right", "left")
CONSOLE_HZ = 60

# The colours Skiing draws (read off ALE frames); index = palette index.
PALETTE = np.array([
    (236, 236, 236),  # snow
    (0, 0, 0),  # borders, HUD digits
    (72, 160, 72),  # tree
    (158, 208, 101),  # tree
    (82, 126, 45),  # tree
    (110, 156, 66),  # tree
    (66, 72, 200),  # flags
    (214, 92, 92),  # skier
    (192, 192, 192),  # moguls
    (214, 214, 214),  # moguls
], dtype=np.uint8)
SNOW = 0
BORDER = 1
SKIER = 7
FLAG = 6
MOGULS = (8, 9)
# The model's 105x80 frame: rows 0-13 the HUD (gates left and the timer, which change while
# the slope stands), rows 89-104 the logo (never changes in an episode), the slope between.
HUD_ROWS, SLOPE_END = 14, 89
# The rows of the 105x80 frame ALE draws its skier in: those of every frame of the 40
# training episodes of both steerings that shows the skier alone (`neuralplay train
# skier-state`). The course's last gate has flags of the skier's colour, which pass through
# every row: outside these they are not the skier.
SKIER_ROWS = (20, 29)


def _packed(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


_KEYS = _packed(PALETTE)
_ORDER = np.argsort(_KEYS)
_SORTED = _KEYS[_ORDER]


def to_palette(frame: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3) -> palette indices (H, W) uint8; an unknown colour takes the nearest."""
    keys = _packed(frame)
    pos = np.clip(np.searchsorted(_SORTED, keys), 0, len(_SORTED) - 1)
    out = _ORDER[pos].astype(np.uint8)
    unknown = _SORTED[pos] != keys
    if unknown.any():
        odd = frame[unknown].astype(np.int32)
        out[unknown] = ((odd[:, None, :] - PALETTE[None].astype(np.int32)) ** 2).sum(axis=2).argmin(axis=1)
    return out


def to_rgb(indices: np.ndarray) -> np.ndarray:
    """Palette indices -> RGB, exactly."""
    return PALETTE[indices]


def downsample(indices: np.ndarray) -> np.ndarray:
    """Native 210x160 palette frame -> the model's 105x80 (every other row and column)."""
    return indices[..., ::2, ::2]


def upsample(indices: np.ndarray) -> np.ndarray:
    """The model's 105x80 palette frame -> native 210x160 (each pixel doubled both ways)."""
    return indices.repeat(2, axis=-2).repeat(2, axis=-1)


PSNR_CAP_DB = 60.0  # what identical frames score, so that no infinity reaches a JSON
DIFF_COLOUR = np.array((255, 0, 255), np.uint8)  # in no Skiing palette entry


def frame_mse(pred_idx: np.ndarray, true_idx: np.ndarray) -> float:
    """Mean squared error of the RGB renderings of palette frames, values in [0, 1]."""
    diff = PALETTE[pred_idx].astype(np.float64) - PALETTE[true_idx]
    return float(np.mean(diff ** 2) / 255.0 ** 2)


def rgb_squared_error(pred_idx: np.ndarray, true_idx: np.ndarray) -> np.ndarray:
    """Per pixel, the squared error of the RGB renderings of palette frames, summed over the
    channels (0-255 scale)."""
    return ((PALETTE[pred_idx].astype(np.float64) - PALETTE[true_idx]) ** 2).sum(axis=-1)


def error_shares(pred: np.ndarray, true: np.ndarray, token_rows: int) -> dict:
    """Where the squared error of the RGB renderings of frames (N, H, W) lies: its share in
    each of `token_rows` bands of rows (the rows a row of tokens covers), and on pixels that
    are snow in the true frame (something painted there)."""
    err = rgb_squared_error(pred, true)
    total = err.sum() or 1.0
    by_row = err.sum(axis=(0, 2))
    rows_per_band = -(-len(by_row) // token_rows)
    bands = [float(by_row[r:r + rows_per_band].sum() / total) for r in range(0, len(by_row), rows_per_band)]
    return {"error_share_by_token_row": [round(b, 4) for b in bands],
            "error_share_on_snow": round(float(err[true == 0].sum() / total), 4)}


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB of a mean squared error (values in [0, 1]), capped at PSNR_CAP_DB."""
    return PSNR_CAP_DB if mse <= 0 else float(min(PSNR_CAP_DB, 10 * np.log10(1.0 / mse)))


def psnr_db(pred_idx: np.ndarray, true_idx: np.ndarray) -> float:
    """PSNR of the RGB renderings of two palette frames (or stacks of them)."""
    return psnr_from_mse(frame_mse(pred_idx, true_idx))


def difference_image(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """The true frame (RGB) faded towards white, with the pixels where pred differs in
    DIFF_COLOUR."""
    image = (255 - (255 - to_rgb(true).astype(np.int32)) // 3).astype(np.uint8)
    image[pred != true] = DIFF_COLOUR
    return image


def make_env(frameskip: int = 4):
    try:
        import ale_py
        import gymnasium as gym
    except ImportError:
        raise UserError("Skiing needs ale-py: `pip install ale-py`") from None
    gym.register_envs(ale_py)
    return gym.make(ENV_ID, repeat_action_probability=0.0, frameskip=frameskip)


@dataclass
class SkiingGame:
    """The real game behind the common game shape: reset(seed) -> frame, step(action)."""

    frameskip: int = 4
    env: object = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.env = make_env(self.frameskip)
        self.frame = np.zeros((*NATIVE, 3), np.uint8)
        self.score = 0.0
        self.steps = 0
        self.over = False

    def reset(self, seed: int | None = None) -> np.ndarray:
        self.frame, _ = self.env.reset(seed=seed)
        self.score, self.steps, self.over = 0.0, 0, False
        return self.frame

    def step(self, action: int) -> float:
        self.frame, reward, terminated, truncated, _ = self.env.step(int(action))
        self.score += float(reward)
        self.steps += 1
        self.over = bool(terminated or truncated)
        return float(reward)

    @property
    def steps_per_s(self) -> float:
        return CONSOLE_HZ / self.frameskip


def skier_pixels(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows and columns of the skier's pixels in a palette frame (105x80 or native): the
    skier-coloured ones in SKIER_ROWS."""
    scale = 2 if indices.shape[0] == NATIVE[0] else 1
    top, bottom = SKIER_ROWS[0] * scale, (SKIER_ROWS[1] + 1) * scale
    ys, xs = np.nonzero(indices[top:bottom] == SKIER)
    return ys + top, xs


def skier_x(indices: np.ndarray) -> float | None:
    """Mean column of the skier's pixels (`skier_pixels`) in a palette frame, or None."""
    cols = skier_pixels(indices)[1]
    return float(cols.mean()) if len(cols) else None


class HeldRandomPlayer:
    """Random keys held for random durations, as a person tapping and holding does."""

    def __init__(self, seed: int, hold=(2, 25)):
        self.rng, self.hold = np.random.default_rng(seed), hold
        self.action, self.left = 0, 0

    def act(self, frame_indices: np.ndarray) -> int:
        if self.left <= 0:
            self.action = int(self.rng.choice(3, p=[0.4, 0.3, 0.3]))
            self.left = int(self.rng.integers(*self.hold))
        self.left -= 1
        return self.action


def skier_heading(indices: np.ndarray) -> int | None:
    """The skier's heading, read off its sprite in a native palette frame: 1 to 4 turning
    right (4: sideways, where it stops), -1 to -4 turning left; 1 and -1 are the two
    straight-down poses, each leaning a little. None where the sprite is not one of the 8
    poses: a fall, something in front of it, a frame scaled up from the model's resolution."""
    ys, xs = np.nonzero(indices == SKIER)
    if not len(xs):
        return None
    sprite = indices[ys.min():ys.max() + 1, xs.min():xs.max() + 1] == SKIER
    height, width = sprite.shape
    if (width, height) not in ((7, 18), (8, 15), (8, 16)):
        return None
    if np.array_equal(sprite[::2], sprite[1::2]) and np.array_equal(sprite[:, ::2], sprite[:, 1::2]):
        return None  # pixels in 2x2 blocks: an upsampled frame, whose sprite these sizes do not describe
    head = np.nonzero(sprite[:2])[1].mean() - (width - 1) / 2  # the head leads the turn
    side = 1 if head > 0 else -1
    if width == 8:
        return side * (4 if height == 16 else 3)
    return side * (2 if abs(head) > 1.5 else 1)


class TargetPlayer:
    """Steers toward a target below the skier: the middle of the next pair of flags
    (`aim="gates"`), or the nearest tree or flag pole (`aim="crash"`, to crash on purpose).

    The keys turn the skier rather than move it. `steer="heading"` reads the skier's heading
    off its sprite and turns to one that points at the target, at most 3 poses from straight
    down, so the skier never stands sideways. `steer="direct"` holds the key toward the
    target, which turns the skier sideways until it stops; it is how the shipped Skiing data
    were collected, and it is used where the heading cannot be read."""

    MAX_TURN = 3

    def __init__(self, aim: str = "gates", seed: int = 0, jitter: float = 0.1, steer: str = "heading"):
        self.aim, self.rng, self.jitter, self.steer = aim, np.random.default_rng(seed), jitter, steer

    def target(self, frame_indices: np.ndarray, sx: float, sy: float) -> float | None:
        body = frame_indices[int(sy) + 4:]  # what lies below the skier
        if self.aim == "gates":
            ys, xs = np.nonzero(body == FLAG)
            if not len(xs):
                return None
            row = ys.min()
            near = xs[ys < row + 8]
            return float((near.min() + near.max()) / 2)
        ys, xs = np.nonzero((body >= 2) & (body <= 6))  # trees and flags
        if not len(xs):
            return None
        nearest = ys.argmin()
        return float(xs[nearest])

    def act(self, frame_indices: np.ndarray) -> int:
        if self.rng.random() < self.jitter:
            return int(self.rng.integers(3))
        ys, xs = np.nonzero(frame_indices == SKIER)
        if not len(xs):
            return 0
        sx, sy = xs.mean(), ys.mean()
        goal = self.target(frame_indices, sx, sy)
        heading = skier_heading(frame_indices) if self.steer == "heading" else None
        if heading is not None:
            return self._turn_toward(heading, 0.0 if goal is None else goal - sx)
        if goal is None or abs(goal - sx) < 2:
            return 0
        return 1 if goal > sx else 2

    def _turn_toward(self, heading: int, dx: float) -> int:
        """Right (1), left (2) or no key (0): one pose from straight down per 12 pixels off."""
        if abs(dx) < 3:
            wanted = heading if abs(heading) == 1 else (1 if heading > 0 else -1)
        else:
            wanted = int(np.sign(dx)) * min(1 + int(abs(dx) // 12), self.MAX_TURN)
        return 1 if heading < wanted else 2 if heading > wanted else 0
