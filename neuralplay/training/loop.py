"""What every training loop does around its own step: the learning-rate schedule, and after
each step the checkpoint, the evaluation and the time limit. One way for every model."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable

import torch

from neuralplay.training import run_state


def resolve_precision(precision: str) -> str:
    """`auto` is bf16 where the CPU computes in it natively (AVX512-BF16 or AMX: there a
    tokenizer step is about 6x faster), fp32 elsewhere, where bf16 would be emulated."""
    if precision != "auto":
        return precision
    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        native = False
    return "bf16" if native else "fp32"


def autocast(precision: str) -> torch.autocast:
    """The forward pass in bf16 (matrix products and convolutions; the rest stays fp32), or
    plain fp32. Weights, gradients and optimiser state are fp32 either way."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def cosine_lr(step: int, steps: int, peak: float, warmup: int, floor: float = 0.0) -> float:
    """Linear warm-up to `peak` over `warmup` steps, then a cosine down to `floor` at `steps`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))


def parameters_not_in(model: torch.nn.Module, source: torch.nn.Module) -> set[str]:
    """Names of the model's parameters that the source has not, or has in another shape:
    what a warm start from it leaves fresh."""
    kept, own = source.state_dict(), model.state_dict()
    return {name for name, _ in model.named_parameters() if name not in kept or kept[name].shape != own[name].shape}


def lr_groups(model: torch.nn.Module, fresh: set[str], fresh_scale: float) -> list[dict]:
    """The model's parameters as two optimiser groups, each with the multiple of the
    schedule's rate it learns at (`scale`): the `fresh` ones (what a warm start's source
    lacked) at fresh_scale, so new parts catch up without shaking the weights they join,
    the rest at 1. Both groups are there even if one is empty, so a resumed optimiser
    always finds the groups it saved."""
    groups = {"kept": {"params": [], "scale": 1.0}, "fresh": {"params": [], "scale": fresh_scale}}
    for name, p in model.named_parameters():
        groups["fresh" if name in fresh else "kept"]["params"].append(p)
    return list(groups.values())


class Pace:
    """When to checkpoint, evaluate and stop. `cfg` has steps, ckpt_every, eval_every and
    max_minutes (None: no time limit)."""

    def __init__(self, cfg, run_dir: Path, parts: dict, bar):
        self.cfg, self.run_dir, self.parts, self.bar = cfg, run_dir, parts, bar
        self.started = time.time()

    def after_step(self, step: int, evaluate: Callable[[int], dict]) -> tuple[dict | None, bool]:
        """Checkpoint and evaluate when due (always at the last step or when time is up);
        returns the evaluation's metrics (None if it did not run) and whether to stop."""
        cfg = self.cfg
        out_of_time = cfg.max_minutes is not None and time.time() - self.started > cfg.max_minutes * 60
        last = step >= cfg.steps or out_of_time
        if step % cfg.ckpt_every == 0 or last:
            run_state.save(self.run_dir, self.parts, step, cfg)
        metrics = None
        if step % cfg.eval_every == 0 or last:
            metrics = evaluate(step)
            (self.run_dir / "metrics.json").write_text(json.dumps({"step": step, **metrics}, indent=2))
        if out_of_time:
            self.bar.write(f"stopping after {cfg.max_minutes} minutes at step {step}; --resume continues")
        return metrics, out_of_time
