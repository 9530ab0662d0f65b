"""The recordings a user has: one line of facts each, or one JSON object."""
from __future__ import annotations

import time
from pathlib import Path

from neuralplay.errors import UserError
from neuralplay.recording.format import SUFFIX, read


def describe(path: Path) -> dict:
    rec = read(path)
    return {
        "path": str(path),
        "game": rec.header.get("game"),
        "engine": rec.header.get("engine"),
        "panes": rec.panes(),
        "checkpoint": rec.header.get("checkpoint"),
        "neuralplay_version": rec.header.get("neuralplay_version"),
        "created": rec.header.get("created"),
        "steps": rec.steps,
        "duration_s": round(rec.duration_s, 3),
        "bytes": path.stat().st_size,
        "complete": rec.complete,
        "damaged": rec.damaged,
    }


def list_recordings(folder: Path) -> list[dict]:
    rows = []
    for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
        try:
            facts = describe(path)
        except UserError:
            continue  # not a recording we can read: not listed
        facts["date"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(path.stat().st_mtime))
        rows.append(facts)
    return rows
