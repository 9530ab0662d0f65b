"""How long one training step of the Skiing tokenizer takes in fp32 and in bf16 autocast.

    python tools/tokenizer_step_time.py --data DATA [--run RUN] [--steps 8] [--threads 2]

Times full steps (forward, backward, optimiser) at the run's batch size on frames of DATA,
from the run's checkpoint if --run is given (trained weights), else from fresh weights of
the 2 x 64 product quantiser. Prints one JSON object: the median seconds a step per precision.
bf16 needs a CPU with bf16 instructions to be fast (see `--precision` of `train skiing-tokenizer`).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from neuralplay.models.vqvae import VQVAE, VQVAEConfig
from neuralplay.training import run_state
from neuralplay.training.skiing_data import load_frames
from neuralplay.training.skiing_tokenizer import HOW_TO_TRAIN, saved_model_config, train_step


def model_to_time(run: Path | None) -> tuple[VQVAE, torch.optim.Optimizer, int]:
    """The run's model and optimiser (or fresh ones) and its batch size."""
    cfg = saved_model_config(run) if run else VQVAEConfig(groups=2, codebook_size=64)
    model = VQVAE(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    if run:
        run_state.load(run, {"model": model, "opt": opt}, HOW_TO_TRAIN)
        return model, opt, run_state.config(run, HOW_TO_TRAIN)["batch_size"]
    return model, opt, 32


def step_seconds(run: Path | None, frames: np.ndarray, precision: str, steps: int) -> float:
    model, opt, batch_size = model_to_time(run)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(steps + 1):  # the first step warms up
        batch = torch.from_numpy(frames[rng.integers(0, len(frames), batch_size)])
        start = time.perf_counter()
        train_step(model, opt, batch, precision)
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a `neuralplay collect skiing` folder")
    parser.add_argument("--run", help="a tokenizer run folder (default: fresh weights)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    frames = load_frames(Path(args.data) / "heldout")
    run = Path(args.run) if args.run else None
    result = {f"{p}_step_s": round(step_seconds(run, frames, p, args.steps), 3) for p in ("fp32", "bf16")}
    print(json.dumps({"run": str(run) if run else "fresh 2 x 64", "threads": args.threads, **result}))


if __name__ == "__main__":
    main()
