"""Evaluate an exported Tetris checkpoint (what ships, run by onnxruntime) against the real game."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neuralplay.games.tetris import EVENT_NAMES, PIECES
from neuralplay.runtime.checkpoint import load_checkpoint, onnx_session
from neuralplay.runtime.tetris import DEFAULT_CHECKPOINT, GAME, MODEL_KIND, N_PIECES
from neuralplay.training import tetris_data
from neuralplay.training.tetris_metrics import closed_loop, evaluate_set, predict_all, spawn_type

HEADLINE = ("cell_accuracy", "board_accuracy", "board_plausibility", "spawn_recall",
            "spawn_precision", "spawn_validity", "spawn_diversity")


def onnx_predictor(session, seed: int = 0):
    """(boards, events) -> next boards from an onnxruntime session, play-time noise."""
    rng = np.random.default_rng(seed)

    def predict(x: np.ndarray, event: np.ndarray) -> np.ndarray:
        u = rng.uniform(1e-9, 1 - 1e-9, size=(len(x), N_PIECES)).astype(np.float32)
        logits = session.run(None, {"board": x.astype(np.uint8), "event": event.astype(np.int64),
                                    "noise": -np.log(-np.log(u))})[0]
        return (logits > 0).astype(np.uint8)

    return predict


def evaluate_session(session, data_dir: Path, closed_loop_steps: int = 5000, seed: int = 0) -> dict:
    """All metrics for one onnxruntime session: the real-play test set at the top level,
    the training-distribution test set under `test_train`, and the closed loop."""
    predict = onnx_predictor(session, seed)
    result: dict = {}
    predictions = {}
    for name in ("test_play", "test_train"):
        data = tetris_data.load(data_dir / f"{name}.npz")
        p = predict_all(predict, data.x, data.event)
        predictions[name] = (data, p)
        metrics = evaluate_set(data.x, data.event, data.y, p)
        if name == "test_play":
            result.update(metrics)
        else:
            result["test_train"] = metrics
    result.update(closed_loop(predict, steps=closed_loop_steps, seed=seed))
    result["_predictions"] = predictions
    return result


def evaluate_checkpoint(spec: str | None, data_dir: Path, closed_loop_steps: int = 5000,
                        threads: int = 2, report: Path | None = None) -> dict:
    ckpt = load_checkpoint(spec, GAME, MODEL_KIND, DEFAULT_CHECKPOINT)
    result = evaluate_session(onnx_session(ckpt.onnx_path, threads), data_dir, closed_loop_steps)
    predictions = result.pop("_predictions")
    result = {"checkpoint": ckpt.identity, "data": str(data_dir), **result}
    if report is not None:
        write_report(report, result, predictions["test_play"])
        result["report"] = str(report)
    return result


def headline(result: dict) -> str:
    lines = [f"{result['checkpoint']} on {result['data']} (real-play test set)"]
    lines += [f"  {k}: {_pct(result[k])}" for k in HEADLINE]
    lines.append("  board accuracy on non-spawns by event: " + ", ".join(
        f"{k} {_pct(v)}" for k, v in result["board_accuracy_nonspawn_by_event"].items()))
    lines.append(f"  closed-loop rule consistency: {_pct(result['closed_loop_rule_consistency'])} "
                 f"over {result['closed_loop_steps']} steps")
    return "\n".join(lines)


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}%"


def write_report(folder: Path, result: dict, test_play) -> None:
    """PNGs a person would rather look at than read: boards by event, by spawn type, charts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuralplay.app.tetris import mark_differences
    from neuralplay.games.tetris_render import render_board

    folder.mkdir(parents=True, exist_ok=True)
    data, p = test_play

    def triple(ax_row, i, label):
        for ax, board, title in zip(ax_row, (data.x[i], data.y[i], p[i]), ("before", "true next", "predicted")):
            image = render_board(board, 12)
            if title == "predicted":
                image = mark_differences(image, board, data.y[i], 12)
            ax.imshow(image)
            ax.set_title(f"{label}: {title}", fontsize=8)
            ax.axis("off")

    # Predicted vs true boards, one example per event (with a non-trivial move where possible).
    fig, axes = plt.subplots(len(EVENT_NAMES), 3, figsize=(6, 2.6 * len(EVENT_NAMES)))
    for row, name in enumerate(EVENT_NAMES):
        idx = np.flatnonzero(data.event == row)
        moved = idx[(data.x[idx] != data.y[idx]).any(axis=(1, 2, 3))]
        triple(axes[row], (moved if len(moved) else idx)[0], name)
    fig.tight_layout()
    fig.savefig(folder / "boards_by_event.png", dpi=90)
    plt.close(fig)

    # One example per spawned piece: the true spawn and what the model spawned from that board.
    fig, axes = plt.subplots(len(PIECES), 3, figsize=(6, 2.6 * len(PIECES)))
    for row, piece in enumerate(PIECES):
        idx = np.flatnonzero(data.spawn == row)
        if len(idx):
            triple(axes[row], idx[0], f"spawn {piece}")
    fig.tight_layout()
    fig.savefig(folder / "boards_by_spawn_type.png", dpi=90)
    plt.close(fig)

    # Metrics per event.
    keys = ["board_accuracy", "cell_accuracy", "board_plausibility"]
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / (len(keys) + 1)
    xs = np.arange(len(EVENT_NAMES))
    nonspawn = [result["board_accuracy_nonspawn_by_event"][n] or 0 for n in EVENT_NAMES]
    ax.bar(xs, nonspawn, width, label="board accuracy (non-spawn)")
    shown = list(nonspawn)
    for k, key in enumerate(keys, start=1):
        values = [result["by_event"][n][key] or 0 for n in EVENT_NAMES]
        shown += values
        ax.bar(xs + k * width, values, width, label=key)
    ax.set_xticks(xs + width * len(keys) / 2, EVENT_NAMES)
    ax.set_ylim(max(0.0, min(0.9, min(shown) - 0.02)), 1.001)
    ax.set_title(f"{result['checkpoint']}: metrics per event (real-play test set)")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(folder / "metrics_by_event.png", dpi=90)
    plt.close(fig)

    # Spawn types the model produced (valid ones), against the uniform 1/7.
    kinds = spawn_type(data.x, p)
    counts = np.bincount(kinds[kinds >= 0], minlength=len(PIECES))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(list(PIECES), counts / max(1, counts.sum()))
    ax.axhline(1 / len(PIECES), color="k", linestyle="--", label="uniform 1/7")
    ax.set_title(f"valid predicted spawns by piece (diversity {_pct(result['spawn_diversity'])})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "spawn_types.png", dpi=90)
    plt.close(fig)
