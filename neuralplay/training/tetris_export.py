"""Export a trained Tetris generator to ONNX, check it against torch, and write its metadata."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from neuralplay import __version__
from neuralplay.errors import UserError
from neuralplay.games.tetris import COLS, EVENT_NAMES, PIECES, ROWS
from neuralplay.models.tetris_gan import N_PIECES, Generator, TetrisGANConfig, sample_noise
from neuralplay.runtime.checkpoint import load_checkpoint, onnx_session, write_metadata
from neuralplay.runtime.tetris import DEFAULT_CHECKPOINT, GAME, MODEL_KIND
from neuralplay.training import tetris_data
from neuralplay.training.tetris_eval import HEADLINE, evaluate_session
from neuralplay.training.tetris_train import load_generator

PARITY_TOLERANCE = 1e-3


def export_onnx(gen: torch.nn.Module, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    board = torch.zeros(2, 2, ROWS, COLS, dtype=torch.uint8)
    event = torch.zeros(2, dtype=torch.int64)
    noise = sample_noise(2)
    batch = {0: "batch"}
    # No constant folding: every weight keeps its parameter's name in the graph (onnxruntime
    # folds the transposes when it loads it), so `generator_from_checkpoint` reads it back by name.
    torch.onnx.export(gen, (board, event, noise), str(out), dynamo=False, opset_version=17,
                      do_constant_folding=False,
                      input_names=["board", "event", "noise"], output_names=["logits"],
                      dynamic_axes={"board": batch, "event": batch, "noise": batch, "logits": batch})


def parity(gen: torch.nn.Module, onnx_path: Path, x: np.ndarray, e: np.ndarray, threads: int = 2) -> float:
    """Largest |torch - onnxruntime| logit difference on boards x (N, 2, 22, 10) under events e."""
    session = onnx_session(onnx_path, threads=threads)
    noise = sample_noise(len(x), torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = gen(torch.from_numpy(x), torch.from_numpy(e), noise).numpy()
    got = session.run(None, {"board": x, "event": e, "noise": noise.numpy()})[0]
    return float(np.abs(ref - got).max())


def export(run_dir: Path, out: Path, data_dir: Path, closed_loop_steps: int = 5000) -> Path:
    gen, cfg = load_generator(run_dir)
    export_onnx(gen, out)
    test_play = tetris_data.load(data_dir / "test_play.npz")
    diff = parity(gen, out, test_play.x[:512], test_play.event[:512])
    if diff > PARITY_TOLERANCE:
        raise UserError(f"ONNX export of {run_dir} disagrees with torch (max logit diff {diff:.2e})")
    metrics = evaluate_session(onnx_session(out, threads=2), data_dir, closed_loop_steps)
    metrics.pop("_predictions")
    summary_path = data_dir / "summary.json"
    training_data = json.loads(summary_path.read_text()) if summary_path.exists() else None
    run_metrics = run_dir / "metrics.json"
    meta = {
        "game": GAME,
        "model_kind": MODEL_KIND,
        "neuralplay_version": __version__,
        "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "observation": {"shape": [2, ROWS, COLS], "dtype": "uint8",
                        "channels": ["settled", "falling"], "values": "0 or 1"},
        "inputs": {"board": "uint8 (B, 2, 22, 10)", "event": "int64 (B,): " + ", ".join(EVENT_NAMES),
                   "noise": f"float32 (B, {N_PIECES}) Gumbel; argmax picks the spawned piece of {PIECES}"},
        "outputs": {"logits": "float32 (B, 2, 22, 10): a cell is on where logit > 0"},
        "config": cfg,
        "training_steps": json.loads(run_metrics.read_text())["step"] if run_metrics.exists() else None,
        "training_data": training_data,
        "onnx_parity_max_abs_diff": diff,
        "metrics": {k: metrics[k] for k in (*HEADLINE, "board_accuracy_nonspawn_by_event",
                                            "closed_loop_rule_consistency", "closed_loop_steps")},
    }
    return write_metadata(out, meta)


def generator_from_checkpoint(checkpoint: str | Path | None, threads: int = 1) -> tuple[Generator, dict]:
    """The torch generator inside an exported checkpoint (the inverse of `export`), and the
    training config stored with it: a shipped model can be fine-tuned without its run folder.

    Weights are read by their parameter names. Graphs exported with constant folding (the
    first shipped one) hold the weights of MatMuls transposed and renamed instead, in the order
    the model runs them, which for the rows-only generator is also the order of its state
    dict. A parity check on random boards proves the weights went back where they came from."""
    import onnx
    from onnx import numpy_helper

    ckpt = load_checkpoint(checkpoint, GAME, MODEL_KIND, DEFAULT_CHECKPOINT)
    cfg = ckpt.meta["config"]
    gen = Generator(TetrisGANConfig(**cfg["model"]))
    graph = onnx.load(str(ckpt.onnx_path)).graph
    weights = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    state = gen.state_dict()
    renamed = [node.input[1] for node in graph.node
               if node.op_type == "MatMul" and node.input[1] in weights and node.input[1] not in state]
    missing = [name for name in state if name not in weights]
    if len(renamed) != len(missing) or any(weights[w].T.shape != state[p].shape for w, p in zip(renamed, missing)):
        raise UserError(f"{ckpt.onnx_path} does not hold a generator of its stored config: "
                        "start from a run folder instead (--init-from RUN)")
    loaded = {name: torch.from_numpy(weights[name].copy()) for name in state if name in weights}
    loaded.update({p: torch.from_numpy(weights[w].T.copy()) for w, p in zip(renamed, missing)})
    gen.load_state_dict(loaded)
    gen.eval()
    x = np.random.default_rng(0).integers(0, 2, (64, 2, ROWS, COLS), dtype=np.uint8)
    e = np.arange(64, dtype=np.int64) % len(EVENT_NAMES)
    diff = parity(gen, ckpt.onnx_path, x, e, threads=threads)
    if diff > PARITY_TOLERANCE:
        raise UserError(f"weights read back from {ckpt.onnx_path} disagree with its graph "
                        f"(max logit diff {diff:.2e}): start from a run folder instead (--init-from RUN)")
    return gen, cfg
