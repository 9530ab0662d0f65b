"""Checkpoints as the runtime sees them: an ONNX graph plus a JSON metadata file, checked on load.

`NAME.json` says what the graph is (game, model kind, observation format, config, the data
it was trained on, its metrics at export) and holds the SHA-256 of `NAME.onnx`, so that a
truncated or altered graph is caught before onnxruntime sees it.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from neuralplay.errors import UserError
from neuralplay.paths import shipped_checkpoints

FORMAT = "neuralplay-checkpoint-v1"


@dataclass(frozen=True)
class Checkpoint:
    name: str
    onnx_path: Path
    meta: dict

    @property
    def identity(self) -> str:
        """A short id for logs and recordings: name and the graph's hash prefix."""
        return f"{self.name}@{self.meta['onnx_sha256'][:12]}"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve(spec: str | Path | None, default_name: str) -> Path:
    """A checkpoint argument (None, a shipped name, NAME.json, NAME.onnx) -> the .json path."""
    if spec is None:
        return shipped_checkpoints() / f"{default_name}.json"
    path = Path(spec)
    if path.suffix == ".onnx":
        return path.with_suffix(".json")
    if path.suffix == ".json":
        return path
    if path.is_dir():
        return path / f"{default_name}.json"
    shipped = shipped_checkpoints() / f"{spec}.json"
    return shipped if shipped.exists() else path.with_suffix(".json")


def load_checkpoint(spec: str | Path | None, game: str, kind: str, default_name: str,
                    fix: str | None = None) -> Checkpoint:
    """Read and check a checkpoint's metadata; raise UserError naming the problem and the fix."""
    meta_path = resolve(spec, default_name)
    fix = fix or f"pass --checkpoint with a {game} checkpoint, or rebuild one with `neuralplay export {game}`"
    if not meta_path.exists():
        raise UserError(f"checkpoint metadata {meta_path} not found: {fix}")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"checkpoint metadata {meta_path} is not valid JSON (corrupt?): {fix}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{meta_path} is not a neuralplay checkpoint ({FORMAT}): {fix}")
    if meta.get("game") != game:
        raise UserError(f"{meta_path} is a checkpoint of {meta.get('game')!r}, not {game}: {fix}")
    if meta.get("model_kind") != kind:
        raise UserError(f"{meta_path} holds a {meta.get('model_kind')!r} model, not {kind}: {fix}")
    onnx_path = meta_path.with_name(meta.get("onnx_file", meta_path.stem + ".onnx"))
    if not onnx_path.exists():
        raise UserError(f"ONNX graph {onnx_path} not found beside {meta_path.name}: {fix}")
    if sha256(onnx_path) != meta.get("onnx_sha256"):
        raise UserError(f"ONNX graph {onnx_path} does not match its metadata (corrupt or replaced): {fix}")
    return Checkpoint(meta_path.stem, onnx_path, meta)


def write_metadata(onnx_path: Path, meta: dict) -> Path:
    """Write NAME.json beside NAME.onnx, with the format tag and the graph's hash."""
    full = {"format": FORMAT, **meta, "onnx_file": onnx_path.name, "onnx_sha256": sha256(onnx_path)}
    meta_path = onnx_path.with_suffix(".json")
    meta_path.write_text(json.dumps(full, indent=2) + "\n")
    return meta_path


def onnx_session(path: Path, threads: int = 1):
    """An onnxruntime session for a game loop: fixed threads, no spinning between runs."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for bad graphs
        first = str(err).strip().splitlines()[0][:160]
        raise UserError(f"onnxruntime cannot load {path} ({first}): re-export the checkpoint") from None
