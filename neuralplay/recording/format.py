"""The recording file: a header, then self-checking chunks appended as the game is played.

    magic "NPREC" | format version (u16) | header length (u32) | header JSON
    chunk*: kind (1 byte: D data, E end) | payload length (u32) | CRC-32 (u32) | payload

A data chunk's payload is a zlib-compressed `.npz` (no pickles) of the steps it holds:
`action` (int64, -1 marks a reset), `t` (float64 seconds since the start), `reward`
(float32) and one array per pane of what the player saw after the step. The end chunk holds
a JSON summary. A file cut anywhere (a crash, `kill -9`) stays readable up to its last
whole chunk; whether the end chunk is there says whether the session closed normally.
"""
from __future__ import annotations

import io
import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuralplay.errors import UserError

MAGIC = b"NPREC"
VERSION = 1
SUFFIX = ".nprec"
_HEAD = struct.Struct("<5sHI")
_CHUNK = struct.Struct("<cII")
DATA, END = b"D", b"E"


def encode_header(header: dict) -> bytes:
    body = json.dumps(header).encode()
    return _HEAD.pack(MAGIC, VERSION, len(body)) + body


def encode_chunk(kind: bytes, payload: bytes) -> bytes:
    return _CHUNK.pack(kind, len(payload), zlib.crc32(payload)) + payload


def encode_steps(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return zlib.compress(buf.getvalue(), 6)


def decode_steps(payload: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(zlib.decompress(payload)), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@dataclass
class Recording:
    """A recording as read back: header, the steps concatenated, and how it ended."""

    path: Path
    header: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict | None = None  # the end chunk; None when the file was cut short
    damaged: str | None = None  # what was wrong where reading stopped, if anything

    @property
    def complete(self) -> bool:
        return self.summary is not None and self.damaged is None

    @property
    def steps(self) -> int:
        return int((self.arrays["action"] >= 0).sum()) if "action" in self.arrays else 0

    @property
    def duration_s(self) -> float:
        t = self.arrays.get("t")
        return float(t[-1]) if t is not None and len(t) else 0.0

    def panes(self) -> list[str]:
        return list(self.header.get("panes", []))


def read_header(f, path: Path) -> dict:
    raw = f.read(_HEAD.size)
    if len(raw) < _HEAD.size or raw[:5] != MAGIC:
        raise UserError(f"{path} is not a neuralplay recording: record one with `neuralplay play ... --record`")
    _, version, length = _HEAD.unpack(raw)
    if version > VERSION:
        raise UserError(f"{path} is a recording of format v{version}, newer than this neuralplay "
                        f"reads (v{VERSION}): upgrade neuralplay (`pip install -U neuralplay`)")
    body = f.read(length)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"{path} has a damaged header and cannot be replayed: record it again") from None


def read(path: str | Path, header_only: bool = False) -> Recording:
    """Read a recording; a file cut short gives the steps up to its last whole chunk."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"recording {path} not found: `neuralplay recordings` lists yours")
    with open(path, "rb") as f:
        rec = Recording(path, read_header(f, path))
        if header_only:
            return rec
        parts: dict[str, list[np.ndarray]] = {}
        while True:
            head = f.read(_CHUNK.size)
            if not head:
                break
            if len(head) < _CHUNK.size:
                rec.damaged = "cut short inside a chunk header"
                break
            kind, length, crc = _CHUNK.unpack(head)
            payload = f.read(length)
            if len(payload) < length:
                rec.damaged = "cut short inside a chunk"
                break
            if zlib.crc32(payload) != crc:
                rec.damaged = "a chunk fails its checksum"
                break
            if kind == END:
                rec.summary = json.loads(payload)
                continue
            try:
                for key, value in decode_steps(payload).items():
                    parts.setdefault(key, []).append(value)
            except (zlib.error, ValueError, OSError):
                rec.damaged = "a chunk cannot be decoded"
                break
    rec.arrays = {k: np.concatenate(v) for k, v in parts.items()}
    return rec
