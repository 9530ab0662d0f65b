"""The shared training-loop helpers: the schedule, and when a run checkpoints, evaluates
and stops (a real checkpoint written and read back)."""
import json
from dataclasses import dataclass

import pytest

torch = pytest.importorskip("torch")

from neuralplay.training import run_state  # noqa: E402
from neuralplay.training.loop import Pace, cosine_lr, resolve_precision  # noqa: E402


def test_cosine_schedule_warms_up_then_falls_to_the_floor():
    lrs = [cosine_lr(s, 100, 1e-3, 10, 1e-5) for s in range(101)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[100] == pytest.approx(1e-5)


def test_auto_precision_resolves_to_one_the_run_can_record():
    assert resolve_precision("auto") in ("bf16", "fp32")
    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"


@dataclass
class Cfg:
    steps: int = 10
    ckpt_every: int = 4
    eval_every: int = 5
    max_minutes: float | None = None


class Bar:
    def __init__(self):
        self.lines = []

    def write(self, line):
        self.lines.append(line)


def test_pace_checkpoints_and_evaluates_when_due_and_at_the_end(tmp_path):
    model = torch.nn.Linear(2, 2)
    pace = Pace(Cfg(), tmp_path, {"model": model}, Bar())
    evaluated = []
    for step in range(1, 11):
        metrics, stop = pace.after_step(step, lambda s: evaluated.append(s) or {"loss": float(s)})
        assert not stop
    assert evaluated == [5, 10]
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"step": 10, "loss": 10.0}
    assert run_state.load(tmp_path, {"model": torch.nn.Linear(2, 2)}, "train") == 10


def test_pace_stops_when_time_is_up_with_a_checkpoint(tmp_path):
    bar = Bar()
    pace = Pace(Cfg(steps=1000, max_minutes=0.0), tmp_path, {"model": torch.nn.Linear(2, 2)}, bar)
    metrics, stop = pace.after_step(3, lambda s: {"loss": 1.0})
    assert stop and metrics == {"loss": 1.0}
    assert run_state.load(tmp_path, {"model": torch.nn.Linear(2, 2)}, "train") == 3
    assert "--resume continues" in bar.lines[-1]
