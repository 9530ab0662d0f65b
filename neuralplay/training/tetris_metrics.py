"""The Tetris metrics of DESIGN.md, with exactly its definitions, and the closed-loop check.

x = board before, y = true next board, p = predicted next board, all (N, 2, 22, 10)
observations; cells are compared as empty / filled (settled or falling alike).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from neuralplay.games.tetris import (
    COLS, PIECES, ROWS, SPAWN_SHAPES, Event, EVENT_NAMES, TetrisGame, fits, split_observation,
)
from neuralplay.games.tetris_agent import HeuristicAgent, follows_rules
from neuralplay.training.tetris_data import TimedPlayer, filled, is_spawn

TOP_ROWS = 3
SPAWN_MASKS = np.zeros((len(PIECES), TOP_ROWS, COLS), bool)
for _i, _name in enumerate(PIECES):
    for _r, _c in SPAWN_SHAPES[_name]:
        SPAWN_MASKS[_i, _r, _c] = True

Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (boards, events) -> next boards


def spawn_type(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Index of the spawn shape that the change x -> p in rows 0-2 equals exactly, on cells
    empty in x; -1 where it equals none."""
    fx, fp = filled(x)[:, :TOP_ROWS], filled(p)[:, :TOP_ROWS]
    change = fx != fp
    match = (change[:, None] == SPAWN_MASKS[None]).all(axis=(2, 3))
    match &= ~(fx[:, None] & SPAWN_MASKS[None]).any(axis=(2, 3))
    return np.where(match.any(axis=1), match.argmax(axis=1), -1)


def _rate(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if mask.size else None


def board_metrics(x: np.ndarray, y: np.ndarray, p: np.ndarray) -> dict:
    """The seven metrics of DESIGN.md over one set of examples (None where undefined)."""
    fy, fp = filled(y), filled(p)
    equal = (fy == fp).reshape(len(y), ROWS * COLS)
    board_ok = equal.all(axis=1)
    true_spawn, pred_spawn = is_spawn(x, y), is_spawn(x, p)
    kind = spawn_type(x, p)
    valid = pred_spawn & (kind >= 0)
    rest_ok = (fy[:, TOP_ROWS:] == fp[:, TOP_ROWS:]).reshape(len(y), (ROWS - TOP_ROWS) * COLS).all(axis=1)
    plausible = np.where(true_spawn, valid & rest_ok, board_ok)
    counts = np.bincount(kind[valid], minlength=len(PIECES)).astype(float)
    if counts.sum():
        share = counts[counts > 0] / counts.sum()
        diversity = float(np.exp(-(share * np.log(share)).sum()) / len(PIECES))
    else:
        diversity = None
    return {
        "examples": int(len(y)),
        "cell_accuracy": float(equal.mean()) if len(y) else None,
        "board_accuracy": _rate(board_ok),
        "board_plausibility": _rate(plausible),
        "spawn_recall": _rate(pred_spawn[true_spawn]),
        "spawn_precision": _rate(true_spawn[pred_spawn]),
        "spawn_validity": _rate(valid[pred_spawn]),
        "spawn_diversity": diversity,
        "spawn_counts": {PIECES[i]: int(n) for i, n in enumerate(counts)},
    }


def evaluate_set(x: np.ndarray, event: np.ndarray, y: np.ndarray, p: np.ndarray) -> dict:
    """Overall metrics, metrics per event, and board accuracy on non-spawns per event."""
    spawn = is_spawn(x, y)
    ok = (filled(y) == filled(p)).reshape(len(y), ROWS * COLS).all(axis=1)
    result = board_metrics(x, y, p)
    result["by_event"] = {
        name: board_metrics(x[event == i], y[event == i], p[event == i])
        for i, name in enumerate(EVENT_NAMES)
    }
    result["board_accuracy_nonspawn_by_event"] = {
        name: _rate(ok[(event == i) & ~spawn]) for i, name in enumerate(EVENT_NAMES)
    }
    result["board_accuracy_nonspawn"] = _rate(ok[~spawn])
    return result


def predict_all(predict: Predictor, x: np.ndarray, event: np.ndarray, batch: int = 4096) -> np.ndarray:
    return np.concatenate([predict(x[i:i + batch], event[i:i + batch])
                           for i in range(0, len(x), batch)]) if len(x) else x.copy()


def closed_loop(predict: Predictor, steps: int = 5000, games: int = 16, seed: int = 0) -> dict:
    """The heuristic player plays through the model; each step is judged by the rules.

    `games` boards run side by side (one batched model call a step). A board that reaches
    game over by the rules (no spawn shape fits) starts again from a fresh real board, and
    that step is not judged.
    """
    rng = np.random.default_rng(seed)
    boards = np.stack([TetrisGame(seed=seed * 1000 + g).observation() for g in range(games)])
    players = [TimedPlayer(HeuristicAgent(seed=seed * 1000 + g), np.random.default_rng(seed + g))
               for g in range(games)]
    judged = consistent = restarts = 0
    by_event = np.zeros((len(Event), 2), np.int64)
    while judged < steps:
        events = np.array([pl.next_event(b) for pl, b in zip(players, boards)], np.int64)
        nxt = predict(boards, events)
        for g in range(games):
            if judged >= steps:
                break
            if _game_over(boards[g]):
                boards[g] = TetrisGame(seed=int(rng.integers(2**31))).observation()
                restarts += 1
                continue
            ok = follows_rules(boards[g], int(events[g]), nxt[g])
            judged += 1
            consistent += ok
            by_event[events[g]] += (ok, 1)
            boards[g] = nxt[g]
    return {
        "closed_loop_steps": judged,
        "closed_loop_rule_consistency": consistent / judged,
        "closed_loop_restarts": restarts,
        "closed_loop_by_event": {n: (float(a / b) if b else None) for n, (a, b) in zip(EVENT_NAMES, by_event)},
    }


def _game_over(obs: np.ndarray) -> bool:
    settled, cells = split_observation(obs)
    if (obs[0] & obs[1]).any():
        return True
    return not cells and not any(fits(settled, s) for s in SPAWN_SHAPES.values())
