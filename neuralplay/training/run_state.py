"""A training run's folder: `ckpt.pt` (modules, optimisers and step, loaded with
weights_only) and `config.json`, written atomically; one way for every model."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from neuralplay.errors import UserError

CKPT, CONFIG = "ckpt.pt", "config.json"


def save(run_dir: Path, parts: dict, step: int, config) -> None:
    """parts: name -> module or optimiser; config: the run's dataclass."""
    path = run_dir / CKPT
    tmp = path.with_suffix(".tmp")
    torch.save({**{k: v.state_dict() for k, v in parts.items()}, "step": torch.tensor(step)}, tmp)
    tmp.replace(path)
    (run_dir / CONFIG).write_text(json.dumps(asdict(config), indent=2))


def load(run_dir: Path, parts: dict, how_to_train: str) -> int:
    """Load the named parts from a run's checkpoint; returns its step."""
    path = run_dir / CKPT
    if not path.exists():
        raise UserError(f"no checkpoint at {path}: {how_to_train}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        for name, part in parts.items():
            part.load_state_dict(state[name])
    except Exception as err:  # torch raises many types for a bad or foreign file
        raise UserError(f"{path} cannot be read ({type(err).__name__}): retrain, or pass another run") from None
    return int(state["step"])


def config(run_dir: Path, how_to_train: str) -> dict:
    path = run_dir / CONFIG
    if not path.exists():
        raise UserError(f"no training run at {run_dir} ({CONFIG} missing): {how_to_train}")
    return json.loads(path.read_text())


def keep_lineage(cfg, saved: dict, fields: tuple[str, ...]) -> None:
    """On resume: set cfg's `fields` (what the run started from, e.g. init_from) to their
    values in the run's stored config `saved`. A resume does not use them, and the run's
    config (exported with its model) must keep saying where it came from, not what the
    resume command said."""
    for name in fields:
        if name in saved:
            setattr(cfg, name, saved[name])


def is_run(path: Path) -> bool:
    """Whether a path is a run folder (not, say, an exported checkpoint)."""
    return path.is_dir() and (path / CONFIG).exists()
