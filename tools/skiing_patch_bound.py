"""How well could one code per 8x8 patch render Skiing? A bound for the tokenizer's design.

    python tools/skiing_patch_bound.py --data DATA [--sizes 512 1024 2048 4096 8192] [--every 3]

DATA is a `neuralplay collect skiing` folder. The K most common 8x8 palette patches of the
training frames form a dictionary; each patch of the held-out frames (every `--every`-th
frame) is replaced by its nearest entry (squared RGB distance), and the frames so rebuilt are
measured as the tokenizer's eval measures its reconstructions. A tokenizer with one code of
K per position reaches this only by using the neighbours' codes. Also printed: how many
distinct patches there are, and the share of held-out patches showing the skier that never
occur in the training frames. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from neuralplay.games.skiing import PALETTE, SKIER, psnr_db
from neuralplay.models.vqvae import PATCH, patch_grid
from neuralplay.training.skiing_data import load_frames


def unpatch(p: np.ndarray, rows: int) -> np.ndarray:
    n, gh, gw, _ = p.shape
    return p.reshape(n, gh, gw, PATCH, PATCH).transpose(0, 1, 3, 2, 4).reshape(n, gh * PATCH, gw * PATCH)[:, :rows]


def bound(train: np.ndarray, heldout: np.ndarray, sizes: list[int]) -> dict:
    train_p, held_p = patch_grid(train).reshape(-1, PATCH * PATCH), patch_grid(heldout)
    dictionary, counts = np.unique(train_p, axis=0, return_counts=True)
    dictionary = dictionary[np.argsort(-counts, kind="stable")]
    wanted, where = np.unique(held_p.reshape(-1, PATCH * PATCH), axis=0, return_inverse=True)
    rgb = PALETTE.astype(np.float32)
    wanted_rgb = rgb[wanted].reshape(len(wanted), -1)
    skier = heldout == SKIER
    result = {"train_frames": len(train), "heldout_frames": len(heldout),
              "distinct_train_patches": int(len(dictionary)), "distinct_heldout_patches": int(len(wanted)),
              "by_dictionary_size": {}}
    for k in sizes:
        entries = dictionary[:k]
        entries_rgb = rgb[entries].reshape(len(entries), -1)
        dist = (wanted_rgb ** 2).sum(1)[:, None] - 2 * wanted_rgb @ entries_rgb.T + (entries_rgb ** 2).sum(1)[None]
        rebuilt = unpatch(entries[dist.argmin(1)][where.ravel()].reshape(held_p.shape), heldout.shape[1])
        result["by_dictionary_size"][k] = {
            "psnr_db": round(psnr_db(rebuilt, heldout), 2),
            "palette_pixel_accuracy": round(float((rebuilt == heldout).mean()), 5),
            "skier_pixel_accuracy": round(float((rebuilt[skier] == SKIER).mean()), 4),
        }
    seen = {bytes(p) for p in train_p[(train_p == SKIER).any(1)]}
    held_skier = held_p.reshape(-1, PATCH * PATCH)
    held_skier = held_skier[(held_skier == SKIER).any(1)]
    result["heldout_skier_patches_unseen_in_train"] = round(
        float(np.mean([bytes(p) not in seen for p in held_skier])), 4)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a `neuralplay collect skiing` folder")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048, 4096, 8192])
    parser.add_argument("--every", type=int, default=3, help="use every n-th held-out frame")
    args = parser.parse_args()
    data = Path(args.data)
    train, heldout = load_frames(data / "train"), load_frames(data / "heldout")[::args.every]
    print(json.dumps(bound(train, heldout, args.sizes), indent=2))


if __name__ == "__main__":
    main()
