"""How the Skiing slope moves from one frame to the next, measured on real episodes.

For every step of the episodes in DATA/heldout (or --split train), the frame before is
shifted by every (dy, dx) in a small window and compared with the frame after, below the
HUD and away from the skier's colour; the shift with the fewest differing pixels is the
step's motion. Prints how often each shift occurs, the PSNR of two predictions of the next
frame, the frame before copied and the frame before shifted by the step's own best shift
(what a model that moved the slope right and drew nothing new would reach), and where the
second's error lies (the HUD rows, the skier's pixels, the rest of the slope).

    python tools/skiing_scroll.py --data DATA [--split heldout|train] [--max-shift 6]
"""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

from neuralplay.games.skiing import HUD_ROWS, SKIER, SLOPE_END, SNOW, frame_mse, psnr_from_mse, rgb_squared_error
from neuralplay.training.skiing_data import load_episode


def shifted(frame: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The slope (the rows between the HUD and the logo) moved up by dy rows and right by dx
    columns, snow filling in; the HUD, the logo and the skier stay where they are."""
    out = frame.copy()
    skier = frame == SKIER
    frame = np.where(skier, SNOW, frame)
    body = np.full_like(frame[HUD_ROWS:SLOPE_END], SNOW)
    src = frame[HUD_ROWS:SLOPE_END]
    h, w = src.shape
    ys, yd = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy), slice(-dy, h))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    body[yd, xd] = src[ys, xs]
    out[HUD_ROWS:SLOPE_END] = body
    out[skier] = SKIER
    return out


def best_shift(before: np.ndarray, after: np.ndarray, shifts: list[tuple[int, int]]) -> tuple[int, int]:
    """The shift of the slope that explains most of the next frame."""
    keep = (before[HUD_ROWS:SLOPE_END] != SKIER)
    scores = []
    for dy, dx in shifts:
        moved = shifted(before, dy, dx)[HUD_ROWS:SLOPE_END]
        mask = keep & (after[HUD_ROWS:SLOPE_END] != SKIER) & (moved != SKIER)
        scores.append(int(((moved != after[HUD_ROWS:SLOPE_END]) & mask).sum()))
    return shifts[int(np.argmin(scores))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a `collect skiing` folder")
    parser.add_argument("--split", default="heldout", choices=("heldout", "train"))
    parser.add_argument("--max-shift", type=int, default=6, help="largest |dy| and |dx| tried")
    args = parser.parse_args()
    paths = sorted((Path(args.data) / args.split).glob("*.npz"))
    if not paths:
        raise SystemExit(f"no Skiing episodes in {Path(args.data) / args.split}: run `neuralplay collect skiing`")
    m = args.max_shift
    shifts = [(dy, dx) for dy in range(-m, m + 1) for dx in range(-m, m + 1)]
    counts: Counter = Counter()
    pairs, best = [], []
    for path in paths:
        frames = load_episode(path)["frames"]
        for t in range(len(frames) - 1):
            s = best_shift(frames[t], frames[t + 1], shifts)
            counts[s] += 1
            pairs.append((frames[t], frames[t + 1]))
            best.append(s)

    def psnr(predictions: list[np.ndarray]) -> float:
        return psnr_from_mse(float(np.mean([frame_mse(p, a) for p, (_, a) in zip(predictions, pairs)])))

    moved = [shifted(b, *s) for (b, _), s in zip(pairs, best)]
    n = len(pairs)
    print(f"{n} steps of {len(paths)} episodes in {Path(args.data) / args.split}")
    print("shift (rows up, columns right): share of steps")
    for (dy, dx), c in counts.most_common(8):
        print(f"  ({dy:+d}, {dx:+d}): {100 * c / n:.1f}%")
    print(f"next frame = the frame before copied: {psnr([b for b, _ in pairs]):.2f} dB")
    print(f"next frame = the frame before, shifted by the step's best shift: {psnr(moved):.2f} dB")
    shares = error_by_region([(p, a) for p, (_, a) in zip(moved, pairs)])
    print("where the error of the best shift lies: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in shares.items()))


def error_by_region(predictions: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Shares of the squared error (RGB) in the HUD rows, on pixels that are the skier's colour
    in either frame, and on the rest of the slope."""
    totals = {"HUD rows": 0.0, "skier's pixels": 0.0, "rest of the slope": 0.0}
    for pred, true in predictions:
        err = rgb_squared_error(pred, true)
        hud = np.zeros(err.shape, bool)
        hud[:HUD_ROWS] = True
        skier = ((pred == SKIER) | (true == SKIER)) & ~hud
        totals["HUD rows"] += err[hud].sum()
        totals["skier's pixels"] += err[skier].sum()
        totals["rest of the slope"] += err[~hud & ~skier].sum()
    whole = sum(totals.values()) or 1.0
    return {k: v / whole for k, v in totals.items()}


if __name__ == "__main__":
    main()
