"""Skiing's course, the slope below the screen: ALE lays out the same gates, trees and moguls
in every game, in the same place down the slope, so the course is one tall image, fit from
the training replays (`neuralplay.training.skier_tables.course_of`); numpy only.

A course is (rows, 160) native palette pixels, one row for each native row down the slope
(row 0 is the screen's row `2 * HUD_ROWS` at the reset), `UNSEEN` where no training frame
showed it. A 105x80 frame whose slope is `at` rows down shows the course's rows `at`,
`at + 2`, ... and its even columns (as `downsample` keeps them). Its objects
(`objects_of`) are the course's connected patches of tree, flag or mogul colours.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from neuralplay.games.skiing import BORDER, FLAG, HUD_ROWS, MOGULS, SKIER, SLOPE_END, SNOW

UNSEEN = 255
SLOPE_ROWS = SLOPE_END - HUD_ROWS  # rows of slope a 105x80 frame shows
UNCOMPARED_TOP = 4  # rows at the top of the slope not compared: ALE leaves an object leaving the screen part drawn there
LOCATE_TOLERANCE = 0.15  # the largest share of the objects' pixels (the frame's or the course's) that may differ where a frame is placed
TREE, GATE_FLAG, MOGUL = range(3)  # an object's kind
TOP, BOTTOM, LEFT, RIGHT, KIND = range(5)  # an object's fields: its course rows and native columns, first and last


def window(course: np.ndarray, at: int, first: int = HUD_ROWS, end: int = SLOPE_END) -> np.ndarray:
    """The 105x80 frame rows `first` to `end` (slope rows) of a frame `at` rows down the
    course; UNSEEN where the course was never seen (or ends)."""
    rows = at + 2 * (np.arange(first, end) - HUD_ROWS)
    out = np.full((len(rows), course.shape[1] // 2), UNSEEN, np.uint8)
    inside = (rows >= 0) & (rows < len(course))
    out[inside] = course[rows[inside], ::2]
    return out


def locate(course: np.ndarray, frame: np.ndarray) -> int | None:
    """How far down the course a 105x80 frame's slope is: the offset under which the fewest
    of the objects' pixels (the frame's and the course's, away from the skier and the top
    rows, where the course was seen) differ; None where even there more than
    `LOCATE_TOLERANCE` of them differ, or where another offset more than a row away fits
    within it too."""
    slope = frame[HUD_ROWS:SLOPE_END]
    if len(course) < 2 * SLOPE_ROWS - 1:
        return None
    starts = np.arange(len(course) - 2 * (SLOPE_ROWS - 1))
    windows = course[starts[:, None] + 2 * np.arange(SLOPE_ROWS), ::2]  # (offsets, rows, 80)
    objects = ((slope != SNOW) & (slope != BORDER)) | ((windows != SNOW) & (windows != BORDER))
    compared = objects & (windows != UNSEEN) & (slope != SKIER)
    compared[:, :UNCOMPARED_TOP] = False
    differ = ((windows != slope) & compared).sum(axis=(1, 2))
    counted = compared.sum(axis=(1, 2))
    share = np.where(counted > 0, differ / np.maximum(counted, 1), 1.0)
    best = int(np.argmin(share))
    fits = share <= LOCATE_TOLERANCE
    if not fits[best] or fits[np.abs(starts - best) > 1].any():
        return None
    return best


def objects_of(course: np.ndarray) -> np.ndarray:
    """The course's objects (K, 5: top, bottom, left, right, kind), each a patch of pixels
    neither snow, border, skier nor unseen that touch (sideways or corner to corner): a
    flag where it holds the flag colour, a mogul where mogul colours, else a tree."""
    solid = ~np.isin(course, (SNOW, BORDER, SKIER, UNSEEN))
    seen = np.zeros_like(solid)
    found = []
    for y0, x0 in zip(*np.nonzero(solid)):
        if seen[y0, x0]:
            continue
        seen[y0, x0], queue, pixels = True, deque([(y0, x0)]), []
        while queue:
            y, x = queue.popleft()
            pixels.append((y, x))
            for yy in range(max(y - 1, 0), min(y + 2, len(course))):
                for xx in range(max(x - 1, 0), min(x + 2, course.shape[1])):
                    if solid[yy, xx] and not seen[yy, xx]:
                        seen[yy, xx] = True
                        queue.append((yy, xx))
        ys, xs = np.array(pixels).T
        colours = course[ys, xs]
        kind = GATE_FLAG if (colours == FLAG).any() else MOGUL if np.isin(colours, MOGULS).any() else TREE
        found.append((ys.min(), ys.max(), xs.min(), xs.max(), kind))
    return np.array(found, np.int64).reshape(-1, 5)
