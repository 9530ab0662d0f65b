"""Recording a session as it is played: the game loop appends steps (cheap), a writer thread
compresses and appends a chunk every half second, so a crash loses at most that much.
An unwritable path or a full disk stops the recording with a message; the game goes on."""
from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import numpy as np

from neuralplay import __version__
from neuralplay.paths import user_data_dir
from neuralplay.recording.format import DATA, END, SUFFIX, encode_chunk, encode_header, encode_steps

FLUSH_EVERY_S = 0.5


def default_path(game: str, engine: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return user_data_dir() / "recordings" / f"{game}-{engine}-{stamp}{SUFFIX}"


class Recorder:
    def __init__(self, path: Path, game: str, engine: str, panes: list[str], checkpoint: str | None,
                 extra: dict | None = None):
        self.path = Path(path)
        self.error: str | None = None
        self.steps = 0
        self._start = time.perf_counter()
        self._last_flush = self._start
        self._rows: list[tuple[int, float, float, dict[str, np.ndarray]]] = []
        self._queue: queue.Queue = queue.Queue()
        header = {"game": game, "engine": engine, "panes": panes, "checkpoint": checkpoint,
                  "neuralplay_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  **(extra or {})}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "wb")
            self._file.write(encode_header(header))
            self._file.flush()
        except OSError as err:
            self._file = None
            self.error = f"cannot write {self.path} ({err.strerror or err})"
        self._thread = threading.Thread(target=self._write_loop, daemon=True)
        self._thread.start()

    @property
    def active(self) -> bool:
        return self.error is None

    def add(self, action: int, reward: float, frames: dict[str, np.ndarray]) -> None:
        """One step: the action (-1 for a reset), its reward, and each pane's frame after it."""
        if not self.active:
            return
        now = time.perf_counter()
        self._rows.append((action, now - self._start, reward, {k: v.copy() for k, v in frames.items()}))
        if action >= 0:
            self.steps += 1
        if now - self._last_flush >= FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        if self._rows:
            self._queue.put(self._rows)
            self._rows = []
        self._last_flush = time.perf_counter()

    def close(self) -> None:
        self.flush()
        self._queue.put(None)
        self._thread.join()
        if self._file is not None:
            self._file.close()

    def _write_loop(self) -> None:
        while True:
            rows = self._queue.get()
            if rows is None:
                self._write(END, f'{{"steps": {self.steps}}}'.encode())
                return
            arrays = {"action": np.array([r[0] for r in rows], np.int64),
                      "t": np.array([r[1] for r in rows], np.float64),
                      "reward": np.array([r[2] for r in rows], np.float32)}
            for pane in rows[0][3]:
                arrays[f"frame_{pane}"] = np.stack([r[3][pane] for r in rows])
            self._write(DATA, encode_steps(arrays))

    def _write(self, kind: bytes, payload: bytes) -> None:
        if self._file is None or self.error:
            return
        try:
            self._file.write(encode_chunk(kind, payload))
            self._file.flush()
        except OSError as err:
            self.error = f"recording stopped: {err.strerror or err} ({self.path})"
