"""The pygame window and the game loop: fixed-timestep updates, drawing, the common keys."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

from neuralplay.app.session import Pane, Session
from neuralplay.errors import UserError

TICK_S = 1 / 60
MARGIN = 12
TEXT_W = 170
STATUS_H = 44
BG = (10, 10, 16)
FG = (225, 225, 235)
DIM = (140, 140, 160)
COMMON_HELP = ["P  pause", "R  restart", "H  this help", "Esc  quit"]


@dataclass
class LoopOptions:
    max_steps: int | None = None
    speed: float = 1.0  # game time runs at this multiple of real time
    scale: float = 1.0  # initial window size relative to the native layout
    title: str = "neuralplay"


def open_window(size: tuple[int, int], title: str):
    """Initialise pygame and open a resizable window, or fail with one clear line."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("SDL_VIDEODRIVER")
    ):
        raise UserError("no display found (DISPLAY is not set): run from a desktop session, "
                        "or set SDL_VIDEODRIVER=dummy for a headless run with --autopilot")
    try:
        pygame.display.init()
        pygame.font.init()
        screen = pygame.display.set_mode(size, pygame.RESIZABLE)
    except pygame.error as err:
        raise UserError(f"cannot open a window ({err}): run from a desktop session, "
                        "or set SDL_VIDEODRIVER=dummy for a headless run with --autopilot") from None
    pygame.display.set_caption(title)
    return pygame, screen


def layout_size(pane_size: tuple[int, int], n_panes: int) -> tuple[int, int]:
    """The native canvas: panes side by side, each with its text column, a status line below."""
    w, h = pane_size
    return n_panes * (w + TEXT_W + MARGIN) + MARGIN, h + 2 * MARGIN + STATUS_H


class Renderer:
    """Lays panes out side by side on a native-size canvas and scales it to the window."""

    def __init__(self, pygame, pane_size: tuple[int, int], n_panes: int):
        self.pg = pygame
        self.pane_w, self.pane_h = pane_size
        self.size = layout_size(pane_size, n_panes)
        self.canvas = pygame.Surface(self.size)
        self.font = pygame.font.Font(None, 24)
        self.view = (1.0, (0, 0))  # canvas-to-window scale and offset of the last frame
        self.big = pygame.font.Font(None, 40)

    def text(self, s: str, pos: tuple[int, int], colour=FG, big: bool = False) -> None:
        self.canvas.blit((self.big if big else self.font).render(s, True, colour), pos)

    def bar_rect(self) -> tuple[int, int, int, int]:
        """The seek bar (x, y, w, h) on the canvas, under the status line."""
        return MARGIN, self.size[1] - 12, self.size[0] - 2 * MARGIN, 6

    def to_canvas(self, pos: tuple[int, int]) -> tuple[float, float]:
        k, (ox, oy) = self.view
        return (pos[0] - ox) / k, (pos[1] - oy) / k

    def draw(self, screen, panes: list[Pane], status: str, overlay: list[str] | None,
             progress: float | None = None) -> None:
        pg = self.pg
        self.canvas.fill(BG)
        x = MARGIN
        for pane in panes:
            surf = pg.surfarray.make_surface(pane.image.swapaxes(0, 1))
            if surf.get_size() != (self.pane_w, self.pane_h):
                surf = pg.transform.scale(surf, (self.pane_w, self.pane_h))
            self.canvas.blit(surf, (x, MARGIN))
            tx, ty = x + self.pane_w + 10, MARGIN
            self.text(pane.title, (tx, ty), big=True)
            ty += 40
            for line in pane.lines:
                self.text(line, (tx, ty))
                ty += 24
            if pane.preview is not None:
                prev = pg.surfarray.make_surface(pane.preview.swapaxes(0, 1))
                self.canvas.blit(prev, (tx, ty + 6))
            x += self.pane_w + TEXT_W + MARGIN
        self.text(status, (MARGIN, self.size[1] - STATUS_H + 4), DIM)
        if progress is not None:
            x, y, w, h = self.bar_rect()
            pg.draw.rect(self.canvas, (50, 50, 66), (x, y, w, h))
            pg.draw.rect(self.canvas, (120, 170, 255), (x, y, int(w * progress), h))
        if overlay:
            self._overlay(overlay)
        self._present(screen)

    def _overlay(self, lines: list[str]) -> None:
        pg = self.pg
        shade = pg.Surface(self.size, pg.SRCALPHA)
        shade.fill((0, 0, 0, 190))
        self.canvas.blit(shade, (0, 0))
        y = self.size[1] // 2 - 14 * len(lines)
        for i, line in enumerate(lines):
            surf = (self.big if i == 0 else self.font).render(line, True, FG)
            self.canvas.blit(surf, ((self.size[0] - surf.get_width()) // 2, y))
            y += 40 if i == 0 else 26

    def _present(self, screen) -> None:
        """Scale the canvas to the window, keeping its aspect ratio (nearest neighbour)."""
        pg = self.pg
        win_w, win_h = screen.get_size()
        k = min(win_w / self.size[0], win_h / self.size[1])
        out = (max(1, int(self.size[0] * k)), max(1, int(self.size[1] * k)))
        offset = ((win_w - out[0]) // 2, (win_h - out[1]) // 2)
        self.view = (k, offset)
        screen.fill(BG)
        screen.blit(pg.transform.scale(self.canvas, out), offset)
        pg.display.flip()


def run(session: Session, pane_size: tuple[int, int], n_panes: int, opts: LoopOptions,
        on_first_frame=None) -> Session:
    """Play until Esc, a closed window, or opts.max_steps engine steps."""
    w, h = layout_size(pane_size, n_panes)
    pygame, screen = open_window((int(w * opts.scale), int(h * opts.scale)), opts.title)
    renderer = Renderer(pygame, pane_size, n_panes)
    paused = show_help = False
    held: set[int] = set()
    pressed: list[int] = []
    last = time.perf_counter()
    backlog = 0.0
    first = True
    try:
        while True:
            for event in pygame.event.get():
                if event.type == pygame.QUIT:
                    return session
                if event.type == pygame.KEYDOWN:
                    if event.key == pygame.K_ESCAPE:
                        return session
                    if event.key == pygame.K_p:
                        paused = not paused
                    elif event.key == pygame.K_h:
                        show_help = not show_help
                    elif event.key == pygame.K_r:
                        session.restart()
                    elif event.key == pygame.K_s:
                        session.resync()
                    else:
                        pressed.append(event.key)
                        held.add(event.key)
                elif event.type == pygame.KEYUP:
                    held.discard(event.key)
                elif event.type == pygame.MOUSEBUTTONDOWN and session.progress() is not None:
                    cx, cy = renderer.to_canvas(event.pos)
                    x, y, w, h = renderer.bar_rect()
                    if x <= cx <= x + w and y - 6 <= cy <= y + h + 6:
                        session.seek((cx - x) / w)
            now = time.perf_counter()
            if not (paused or show_help):
                backlog = min(backlog + (now - last) * opts.speed, 0.25 * max(opts.speed, 1))
                while backlog >= TICK_S:
                    session.update(TICK_S, pressed, held)
                    pressed = []
                    backlog -= TICK_S
                    if opts.max_steps is not None and session.played >= opts.max_steps:
                        break
            last = now
            overlay = None
            if show_help:
                overlay = ["Keys"] + session.help_lines() + COMMON_HELP
            elif paused:
                overlay = ["Paused", "P to go on"]
            elif session.over:
                overlay = ["Game over", "R to restart, Esc to quit"]
            renderer.draw(screen, session.panes(), session.status(), overlay, session.progress())
            if first:
                first = False
                if on_first_frame:
                    on_first_frame()
            if opts.max_steps is not None and session.played >= opts.max_steps:
                return session
            # Draw at most 60 frames a second; the game's own clock is the backlog above.
            spare = TICK_S - (time.perf_counter() - now)
            if spare > 0:
                time.sleep(spare)
    finally:
        pygame.quit()
