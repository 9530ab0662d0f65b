"""What the app loop knows of a game: a Session it feeds keys and time, and Panes it draws.

A session owns its engines (real, neural or both) and its controls; the loop owns the
window, the clock, pause, help, restart, re-sync and quitting. No game is special-cased in
the loop.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class Pane:
    """One side of the window: a picture and the lines of text beside it."""

    title: str
    image: np.ndarray  # (H, W, 3) uint8, drawn scaled up with nearest neighbour
    lines: list[str] = field(default_factory=list)
    preview: np.ndarray | None = None  # small picture under the text (next piece)


class Session(Protocol):
    steps: int  # engine steps of the game on screen (a restart sets it to 0)
    played: int  # engine steps since the window opened, restarts included (what --max-steps counts)
    over: bool  # the game ended; R restarts

    def update(self, dt: float, pressed: list[int], held: set[int]) -> None:
        """Advance by dt seconds; `pressed` are keys that went down, `held` those still down."""

    def panes(self) -> list[Pane]: ...

    def status(self) -> str:
        """One line under the panes (agreement in compare mode, hints otherwise)."""

    def help_lines(self) -> list[str]: ...

    def restart(self) -> None: ...

    def resync(self) -> bool:
        """Put the neural side back onto the real one; False where there is nothing to sync."""

    def progress(self) -> float | None:
        """Where a replay stands (0-1), drawn as a seek bar; None for live games."""

    def seek(self, fraction: float) -> None:
        """Jump to a point of a replay (a click on the seek bar)."""


def recording_status(recorder) -> str:
    """The status line's prefix while recording: the file, or why recording stopped."""
    if recorder is None:
        return ""
    return f"{recorder.error}  |  " if recorder.error else f"REC {recorder.path.name}  |  "
