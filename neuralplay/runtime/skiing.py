"""Neural Skiing: the dynamics model's two graphs and the tokenizer on onnxruntime, numpy only.

`reset(frames)` encodes real frames and fills the cache with the last `context - 1` of them
(the prefill graph). `step(action)` samples the next frame's tokens with MaskGIT, a few
passes of the step graph against that cache, then runs the step graph once more on the
finished tokens to get the frame's keys and values, rolls them into the cache (its size
never grows) and decodes the tokens into a palette frame.

A model with `skier_motion` also keeps the skier's column as a float: reset reads it off
the real frames, each finished frame's pass gives the skier's velocity under each action,
and the next frame is drawn conditioned on the column plus the velocity of the action
taken, so motion slower than a pixel a step adds up. Where the model's folder also holds
skier-state tables (`skier_state.npz`, `neuralplay train skier-state`), the column comes
from them instead: reset reads ALE's skier state off the real frames and each step moves it
on by the key (`neuralplay.runtime.skier_state`), and the column drawn moves as that
state's does. Tables that also give the rows the skier is drawn in keep the skier's colour
to its box: each frame decoded has the skier-coloured pixels outside those rows, or further
from the told column than the sprite reaches (plus `TOLD_COLUMN_ERROR`), painted over with
their neighbours' colour, and the patches painted encoded again before the frame is cached.
Without it the model's stray skier-coloured blobs (at a tree or a flag it draws near the
skier) pull the skier's reading off, and the model reads them back as the skier.
With the box, a frame that shows no skier, or a sliver of one (the model drew a tree over
the skier standing at it), keeps the last skier shown, drawn again at the told column and
encoded again likewise, so that the model reads the skier back and draws it on.

The skier state also carries the slope's downhill motion. Where it moves the slope up by
whole rows in a step, the frame before is moved up by them first (`scroll_slope`: the HUD,
the logo and the skier-coloured pixels stay, the rows that come in at the bottom are bare
snow; not on the first step after `reset`, whose frame before is real), and its
keys and values in the cache are computed again from it, so that the model draws the next
frame on a slope that has moved. The model did not learn the scroll (its slope stands
still, docs/skiing.md); it draws what comes of it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from neuralplay.errors import UserError
from neuralplay.games.skiing import HUD_ROWS, SKIER, SLOPE_END, SNOW, skier_x
from neuralplay.runtime.checkpoint import Checkpoint, load_checkpoint, onnx_session
from neuralplay.runtime.skier_state import (SCROLL_SHIFTS, STATE_FRAMES, TABLES_FILE, SkierState, SkierTables,
                                            moved_up)
from neuralplay.runtime.skiing_course import UNSEEN, locate, window
from neuralplay.runtime.skiing_tokenizer import SkiingTokenizer, radix, token_codes

GAME = "skiing"
STARTS_FILE = "skiing_starts.npz"
PREFILL_KIND, STEP_KIND = "skiing-st-prefill", "skiing-st-step"
PREFILL_NAME, STEP_NAME = "skiing_dynamics_prefill", "skiing_dynamics_step"
FIX = ("pass the folder of a Skiing dynamics model's graphs, or make one with `neuralplay train "
       "skiing-dynamics` and `neuralplay export skiing-dynamics`")


MOTION_FRAMES = 4  # the skier's recent motion: its mean column change over the last this many frames
UNKNOWN_COLUMN = -1.0  # what the graphs read where a frame shows no skier
# How far (px at 105x80) the skier may be drawn from the column the skier state tells, beyond
# its sprite's reach, before its colour there is painted over: chosen by `eval skiing
# --rollouts 24` over 0.25, 0.75 and 1 (docs/skiing.md, "The skier's box").
TOLD_COLUMN_ERROR = 0.75
# A frame showing fewer skier-coloured pixels than this share of the last skier shown has
# lost it (the real frames' skier is 13 to 18 pixels; under 10 in 0.5% of them).
SKIER_SHOWN = 0.5


def skier_columns(frames: np.ndarray) -> np.ndarray:
    """(T, H, W) palette frames -> the skier's column in each (T,) float32, NaN where none."""
    return np.array([np.nan if (x := skier_x(f)) is None else x for f in frames], np.float32)


def recent_motion(columns: np.ndarray) -> np.ndarray:
    """A skier's columns over consecutive frames (T,) -> its mean column change a frame over
    the MOTION_FRAMES frames up to each (fewer at the start) (T,) float32; 0 where unknown."""
    columns = np.asarray(columns, np.float32)
    earlier = np.maximum(np.arange(len(columns)) - MOTION_FRAMES, 0)
    frames_between = np.maximum(np.arange(len(columns)) - earlier, 1)
    return np.nan_to_num((columns - columns[earlier]) / frames_between).astype(np.float32)


def next_column(column: float, move: float, width: int) -> float:
    """The skier's column after a step's move, kept on a frame `width` pixels wide (NaN,
    unknown, stays NaN)."""
    return float(np.clip(column + move, 0, width - 1))


def graph_columns(columns: np.ndarray) -> np.ndarray:
    """Columns with NaN where unknown -> as the graphs read them (UNKNOWN_COLUMN there)."""
    return np.nan_to_num(np.asarray(columns, np.float32), nan=UNKNOWN_COLUMN)


@dataclass(frozen=True)
class SkierBox:
    """Where real frames draw the skier: between rows `top` and `bottom` (inclusive) and
    within `half_width` columns of its column."""

    top: int
    bottom: int
    half_width: float


def stray_skier_pixels(frame: np.ndarray, box: SkierBox, column: float) -> np.ndarray:
    """The skier-coloured pixels of a palette frame outside the box around `column` (H, W)
    bool; outside its rows only where the column is unknown (NaN)."""
    ys, xs = np.nonzero(frame == SKIER)
    outside = (ys < box.top) | (ys > box.bottom)
    if not np.isnan(column):
        outside |= np.abs(xs - column) > box.half_width
    stray = np.zeros(frame.shape, bool)
    stray[ys[outside], xs[outside]] = True
    return stray


def repaint(frame: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """The frame with `pixels` painted the most common colour of their 3x3 neighbours, of
    those not in any colour the pixels have (the frame's most common such colour where no
    neighbour is; snow where none is)."""
    out, height, width = frame.copy(), *frame.shape
    other = ~np.isin(frame, np.unique(frame[pixels]))
    fallback = np.bincount(frame[other]).argmax() if other.any() else SNOW
    for y, x in zip(*np.nonzero(pixels)):
        near = (slice(max(y - 1, 0), min(y + 2, height)), slice(max(x - 1, 0), min(x + 2, width)))
        around = frame[near][other[near]]
        out[y, x] = np.bincount(around).argmax() if len(around) else fallback
    return out


def scroll_slope(frame: np.ndarray, rows: int, coming: np.ndarray | None = None) -> np.ndarray:
    """A palette frame (105, 80) with its slope (below the HUD, above the logo) moved up by
    `rows`: the skier-coloured pixels held where they are (the slope under them painted as
    around them; the skier's box, where on, has left only the skier's), and the
    rows that come in at the bottom `coming` (rows, 80) where given and not UNSEEN, elsewhere
    each column's most common colour (snow, the borders)."""
    out = frame.copy()
    slope = frame[HUD_ROWS:SLOPE_END]
    skier = slope == SKIER
    bare = repaint(slope, skier) if skier.any() else slope
    fill = np.tile(np.array([np.bincount(column).argmax() for column in bare.T], np.uint8), (rows, 1))
    if coming is not None:
        fill = np.where(coming != UNSEEN, coming, fill)
    moved = moved_up(bare, rows, fill)
    moved[skier] = SKIER
    out[HUD_ROWS:SLOPE_END] = moved
    return out


def rows_moved(before: float, after: float) -> int:
    """Whole rows the slope moved up between two downhill readings (rows at 105x80): 0 where
    either is unknown, at most the largest scroll real frames show in a step."""
    if np.isnan(before) or np.isnan(after):
        return 0
    return int(np.clip(math.floor(after) - math.floor(before), 0, max(SCROLL_SHIFTS)))


def maskgit_schedule(n_tokens: int, steps: int) -> list[int]:
    """How many tokens stay masked after each step (cosine schedule), ending at 0."""
    return [int(n_tokens * math.cos(math.pi / 2 * (s + 1) / steps)) for s in range(steps)]


@dataclass
class Sampling:
    steps: int | None = 3  # MaskGIT passes per frame (one more pass then caches the frame); None: the checkpoint's
    temperature: float = 0.0  # 0: the most likely token at each pass (Skiing is deterministic)
    skier_box: bool = True  # paint over the skier's colour outside its box, where the skier-state tables give one
    slope_scroll: bool = True  # move the frame before by the skier state's downhill motion, where there is one
    course: bool = False  # and bring the course in at the bottom (not bare snow), where the tables hold it and the start is on it
    falls: bool = True  # let the skier state fall where the tables' fall rules say, where the start is on the course
    skier_hold: bool = True  # with the skier's box: a frame that loses the skier keeps the last one drawn, at the told column


@dataclass
class StartState:
    """Where a neural game can begin: the real game reset with `seed` and played with
    `actions`, whose last frames (palette, model resolution) are `frames`."""

    seed: int
    actions: np.ndarray  # (K,) from reset to the last frame
    frames: np.ndarray  # (P, 105, 80) uint8, the last P frames

    def actions_into_frames(self) -> np.ndarray:
        """The actions between the frames (P - 1,)."""
        return self.actions[len(self.actions) - len(self.frames) + 1:]


def save_starts(path: Path, starts: list[StartState]) -> None:
    np.savez_compressed(path, seeds=np.array([s.seed for s in starts], np.int64),
                        actions=np.stack([s.actions for s in starts]).astype(np.int64),
                        frames=np.stack([s.frames for s in starts]).astype(np.uint8))


def load_starts(folder: str | Path | None) -> list[StartState]:
    """The start states shipped beside the dynamics graphs."""
    from neuralplay.paths import shipped_checkpoints

    path = Path(folder or shipped_checkpoints()) / STARTS_FILE
    try:
        with np.load(path, allow_pickle=False) as f:
            return [StartState(int(s), a, fr) for s, a, fr in zip(f["seeds"], f["actions"], f["frames"])]
    except (OSError, KeyError, ValueError) as err:
        raise UserError(f"start states {path} cannot be read ({type(err).__name__}): {FIX}") from None


def load_dynamics(folder: str | Path | None) -> tuple[Checkpoint, Checkpoint]:
    def load(name: str, kind: str) -> Checkpoint:
        return load_checkpoint(Path(folder) / f"{name}.json" if folder else None, GAME, kind, name, FIX)

    return load(PREFILL_NAME, PREFILL_KIND), load(STEP_NAME, STEP_KIND)


class NeuralSkiing:
    """Skiing as the world model plays it: palette frames (105, 80) in and out."""

    def __init__(self, checkpoint: str | Path | None = None, tokenizer: SkiingTokenizer | str | Path | None = None,
                 threads: int = 1, seed: int | None = None, sampling: Sampling | None = None):
        self.prefill_ckpt, self.step_ckpt = load_dynamics(checkpoint)
        if not isinstance(tokenizer, SkiingTokenizer):
            tokenizer = SkiingTokenizer(tokenizer, threads=threads)
        self.tokenizer = tokenizer
        trained_on = self.step_ckpt.meta.get("tokenizer")
        if trained_on != tokenizer.identity:
            raise UserError(f"the dynamics model {self.step_ckpt.identity} was trained on tokenizer "
                            f"{trained_on}, not {tokenizer.identity}: pass the tokenizer it was trained with")
        model = self.step_ckpt.meta["model"]
        self.context, self.n_tokens = int(model["context"]), int(np.prod(model["grid"]))
        self.grid = tuple(model["grid"])
        self.mask_id, self.no_action = int(model["mask_id"]), int(model["n_actions"])
        self.groups = int(model.get("groups", 1))
        self.skier_motion = bool(model.get("skier_motion", False))
        self._prefill = onnx_session(self.prefill_ckpt.onnx_path, threads)
        self._step = onnx_session(self.step_ckpt.onnx_path, threads)
        # The passes a frame takes are the checkpoint's (chosen at export, by measurement),
        # unless the caller gives its own.
        recorded = int(self.step_ckpt.meta.get("maskgit_steps", Sampling.steps))
        given = sampling or Sampling(steps=None)
        self.sampling = replace(given, steps=given.steps or recorded)
        try:
            self.vocabulary = self.recorded_vocabulary(tokenizer)
        except (ValueError, TypeError) as err:
            raise UserError(f"{self.step_ckpt.onnx_path.with_suffix('.json')}: its token_vocabulary does not fit "
                            f"the tokenizer ({err}): export the model again with `neuralplay export "
                            "skiing-dynamics`") from None
        self.rng = np.random.default_rng(seed)
        self.cache: np.ndarray | None = None
        self.tokens = np.zeros(self.n_tokens, np.int64)
        self.frame = np.zeros((1, 1), np.uint8)
        self.columns = np.zeros(0, np.float32)  # skier_motion: the skier's last columns, NaN where unknown
        self.velocities = np.zeros(self.no_action, np.float32)  # skier_motion: its next move under each action
        tables = self.step_ckpt.onnx_path.parent / TABLES_FILE
        self.skier_state = (SkierState(SkierTables.load(tables), seed)
                            if self.skier_motion and tables.is_file() else None)
        self.anchor: tuple[float, float] | None = None  # the column drawn and the state's, at reset
        self.skier_box = self.box_of(self.skier_state.tables) if self.skier_state and self.sampling.skier_box else None
        self.slope_scroll = self.skier_state is not None and self.sampling.slope_scroll
        tables = self.skier_state.tables if self.skier_state is not None else None
        self.course = tables.course if tables is not None and self.slope_scroll and self.sampling.course else None
        self.falls = tables is not None and tables.course is not None and tables.can_fall and self.sampling.falls
        self.course_at: int | None = None  # how far down the course the last frame's slope is, where found
        self.cached_with: dict[str, np.ndarray] | None = None  # the inputs the last frame's cache entry came from
        self.skier_hold = self.skier_box is not None and self.skier_motion and self.sampling.skier_hold
        self.last_skier: tuple[np.ndarray, np.ndarray] | None = None  # its pixels' rows, columns less its column
        self.skier_held = 0  # how many frames since reset kept the last skier drawn

    @staticmethod
    def box_of(tables: SkierTables) -> SkierBox | None:
        """The skier's box the tables give: the rows the training frames draw it in, and the
        sprites' reach from their mean column plus the told column's error (older tables,
        without the rows: none)."""
        return None if tables.rows is None else SkierBox(*tables.rows, tables.reach + TOLD_COLUMN_ERROR)

    def recorded_vocabulary(self, tokenizer: SkiingTokenizer) -> Vocabulary | RowVocabulary | None:
        """What decoding keeps to, as the export recorded it: the tokens of each row of the
        grid (`token_vocabulary_by_row`), or older exports' tokens of every row
        (`token_vocabulary`), or none."""
        meta, k, g = self.step_ckpt.meta, tokenizer.codes_per_group, tokenizer.groups
        if meta.get("token_vocabulary_by_row"):
            rows = meta["token_vocabulary_by_row"]
            if len(rows) != self.grid[0]:
                raise ValueError(f"{len(rows)} rows for a grid of {self.grid[0]}")
            return RowVocabulary(rows, self.grid[1], k, g)
        return Vocabulary(np.asarray(meta["token_vocabulary"]), k, g) if meta.get("token_vocabulary") else None

    @property
    def frames_read(self) -> int:
        """How many real frames before a step `reset` reads: the cache's context - 1, and with
        skier_motion at least enough for the skier's recent motion (MOTION_FRAMES + 1), and
        with skier-state tables enough to read the state (STATE_FRAMES)."""
        past = self.context - 1
        if self.skier_state is not None:
            return max(past, MOTION_FRAMES + 1, STATE_FRAMES)
        return max(past, MOTION_FRAMES + 1) if self.skier_motion else past

    @property
    def decoding(self) -> dict:
        """How its frames are decoded, as eval and bench report it: the MaskGIT passes, the
        temperature, the skier's box (None where there is none) and whether the frame before
        is moved by the slope's motion, bringing the course in, whether the skier falls
        where the fall rules say, and whether a frame that loses the skier keeps the last one."""
        return {"maskgit_steps": self.sampling.steps, "temperature": self.sampling.temperature,
                "skier_box": None if self.skier_box is None else asdict(self.skier_box),
                "slope_scroll": self.slope_scroll, "course": self.course is not None, "falls": self.falls,
                "skier_hold": self.skier_hold}

    @property
    def reward_per_step(self) -> float:
        """ALE's time penalty per step, as the training data had it (from the metadata)."""
        return float(self.step_ckpt.meta.get("reward_per_step", 0.0))

    @property
    def identity(self) -> str:
        """The step graph's and the tokenizer's ids, for logs and recordings."""
        return " + ".join([self.step_ckpt.identity, *self.tokenizer.identity])

    def reset(self, frames: np.ndarray, actions: np.ndarray | None = None) -> np.ndarray:
        """Start from real palette frames (T, 105, 80) and the T - 1 actions between them; the
        last `context - 1` are used, fewer are padded by repeating the first."""
        frames = np.asarray(frames, np.uint8)
        led = np.full(len(frames), self.no_action, np.int64)  # the action that led to each frame
        if actions is not None and len(frames) > 1:
            led[1:] = np.asarray(actions, np.int64)[-(len(frames) - 1):]
        past = self.context - 1
        if len(frames) < past:
            pad = past - len(frames)
            frames = np.concatenate([np.repeat(frames[:1], pad, axis=0), frames])
            led = np.concatenate([np.full(pad, self.no_action, np.int64), led])
        columns = skier_columns(frames) if self.skier_motion else None
        if self.skier_state is not None:
            self.anchor = None
            self.skier_state.read(frames, led[1:])
            if not np.isnan(self.skier_state.column) and not np.isnan(columns[-1]):
                self.anchor = (float(columns[-1]), self.skier_state.column)
        found = locate(self.skier_state.tables.course, frames[-1]) if self.course is not None or self.falls else None
        self.course_at = found if self.course is not None else None
        if self.skier_state is not None:
            self.skier_state.place(found if self.falls else None)
        frames, led = frames[-past:], led[-past:]
        self.cached_with = None
        tokens = self.tokenizer.encode(frames).reshape(past, self.n_tokens)
        feeds = {"tokens": tokens[None], "actions": led[None]}
        if self.skier_motion:
            self.columns = columns[-(MOTION_FRAMES + 1):]
            feeds.update(columns=graph_columns(columns[-past:])[None], recent=self.recent())
            self.cache, velocities = self._prefill.run(None, feeds)
            self.velocities = velocities[0]
        else:
            self.cache = self._prefill.run(None, feeds)[0]
        self.tokens, self.frame = tokens[-1], frames[-1]
        self.skier_held = 0
        self.last_skier = None
        if self.skier_hold:
            self.remember_skier(float(columns[-1]))
        return self.frame

    def step(self, action: int) -> np.ndarray:
        if self.cache is None:
            raise RuntimeError("reset() first")
        feeds = {"action": np.array([action], np.int64), "cache": self.cache}
        if self.skier_motion:
            downhill = self.skier_state.downhill if self.anchor else np.nan
            column = self.state_column(action) if self.anchor else np.nan
            if np.isnan(column):
                column = next_column(self.columns[-1], self.velocities[action], self.frame.shape[1])
            self.columns = np.append(self.columns, column)[-(MOTION_FRAMES + 1):]
            feeds.update(column=graph_columns([column]), recent=self.recent())
            if self.slope_scroll and self.anchor:
                feeds["cache"] = self.scroll_cached_frame(rows_moved(downhill, self.skier_state.downhill))
        self.tokens = self.sample_tokens(feeds)
        self.frame = self.tokenizer.decode(self.tokens.reshape(1, *self.grid))[0]
        if self.skier_box is not None:
            self.keep_skier_to_box()
        if self.skier_hold and not np.isnan(self.columns[-1]):
            self.hold_skier(float(self.columns[-1]))
        if self.skier_motion and np.isnan(self.columns[-1]):  # lost (or never seen): read it off the frame drawn
            drawn = skier_x(self.frame)
            self.columns[-1] = np.nan if drawn is None else drawn
            feeds.update(column=graph_columns(self.columns[-1:]), recent=self.recent())
        outputs = self._run({**feeds, "tokens": self.tokens[None]})
        if self.slope_scroll:
            self.cached_with = feeds
        self.cache = np.concatenate([feeds["cache"][:, :, :, :, 1:], outputs[1]], axis=4)
        if self.skier_motion:
            self.velocities = outputs[2][0]
        return self.frame

    def scroll_cached_frame(self, rows: int) -> np.ndarray:
        """The cache with its last frame moved up `rows` (`scroll_slope`, the course's rows
        coming in where the frames were found on it) and its keys and values computed again
        from the inputs they came from; as it was where the slope stays or the last frame is
        a real one (reset's, read whole by the prefill graph)."""
        if rows < 1 or self.cached_with is None:
            return self.cache
        coming = None
        if self.course_at is not None:
            self.course_at += 2 * rows
            coming = window(self.course, self.course_at, SLOPE_END - rows, SLOPE_END)
        tokens = self.tokenizer.encode(scroll_slope(self.frame, rows, coming)[None]).reshape(1, -1)
        new = self._run({**self.cached_with, "tokens": tokens})[1]
        self.cache = np.concatenate([self.cached_with["cache"][:, :, :, :, 1:], new], axis=4)
        return self.cache

    def keep_skier_to_box(self) -> None:
        """Paint over the skier-coloured pixels the frame shows outside the skier's box, and
        encode the patches painted again so that the cache holds what is shown."""
        column = self.columns[-1] if self.skier_motion else np.nan
        stray = stray_skier_pixels(self.frame, self.skier_box, column)
        if not stray.any():
            return
        self.frame = repaint(self.frame, stray)
        self.encode_painted(*np.nonzero(stray))

    def encode_painted(self, ys: np.ndarray, xs: np.ndarray) -> None:
        """Encode again the patches holding the pixels painted (their rows and columns), so
        that the tokens, and the cache made of them, hold what the frame shows."""
        patch_h, patch_w = -(-self.frame.shape[0] // self.grid[0]), self.frame.shape[1] // self.grid[1]
        painted = np.unique(ys // patch_h * self.grid[1] + xs // patch_w)
        self.tokens[painted] = self.tokenizer.encode(self.frame[None]).reshape(-1)[painted]

    def remember_skier(self, column: float) -> bool:
        """Keep the frame's skier-coloured pixels, as rows and columns less `column`, where it
        shows a skier (at least SKIER_SHOWN of the pixels of the last one kept; any, where
        none is) and its column is known; whether it did."""
        ys, xs = np.nonzero(self.frame == SKIER)
        least = 1 if self.last_skier is None else SKIER_SHOWN * len(self.last_skier[0])
        if len(ys) < least or np.isnan(column):
            return False
        self.last_skier = (ys, xs - column)
        return True

    def hold_skier(self, column: float) -> None:
        """Where the frame shows no skier, or a sliver of one (the model drew something else
        over it: a tree it stands at), draw the last skier shown again at the told column,
        and encode the patches drawn again, so that the model reads the skier back in the
        next frame."""
        if self.remember_skier(column) or self.last_skier is None:
            return
        rows, offsets = self.last_skier
        ys, xs = rows, np.clip(np.rint(offsets + column).astype(np.int64), 0, self.frame.shape[1] - 1)
        self.frame = self.frame.copy()
        self.frame[ys, xs] = SKIER
        self.encode_painted(ys, xs)
        self.skier_held += 1

    def state_column(self, action: int) -> float:
        """The skier-state's next column under `action`, as the model's frames draw it: the
        column drawn at reset, moved as the state's column moves (half: the model's frames
        are half ALE's width)."""
        drawn, state = self.anchor
        moved = (self.skier_state.step(action) - state) / 2
        return float(np.clip(drawn + moved, 0, self.frame.shape[1] - 1))

    def recent(self) -> np.ndarray:
        """The skier's recent motion as the graphs read it (1,): that of the runtime's own
        columns, so in the open loop the velocities it integrated feed the next ones."""
        return recent_motion(self.columns)[-1:]

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The step graph on one frame's tokens: logits, the frame's keys and values, and
        with skier_motion its velocities."""
        return self._step.run(None, feeds)

    def sample_tokens(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The next frame's tokens by MaskGIT over the step graph, given its other inputs."""
        def logits_of(tokens: np.ndarray) -> np.ndarray:
            return self._run({**feeds, "tokens": tokens[None]})[0][0]

        return maskgit(logits_of, self.n_tokens, self.mask_id, self.sampling, self.rng, self.groups, self.vocabulary)


class Vocabulary:
    """The tokens a tokenizer of G groups of K codes actually gives real frames, a few
    thousand of its K^G. The dynamics model's head predicts each group's code on its own, so
    its most likely codes can make a token no real frame has, which the decoder draws as
    broken sprites and the model then reads back; decoding keeps to these tokens instead."""

    def __init__(self, tokens: np.ndarray, codes_per_group: int, groups: int):
        self.tokens = np.unique(np.asarray(tokens, np.int64))
        if len(self.tokens) == 0 or self.tokens[0] < 0 or self.tokens[-1] >= codes_per_group ** groups:
            raise ValueError(f"a token vocabulary holds tokens of {groups} groups of {codes_per_group} codes")
        self.codes = token_codes(self.tokens, codes_per_group, groups)  # (S, G)
        self.radix = radix(codes_per_group, groups)

    def holds(self, codes: np.ndarray) -> np.ndarray:
        """Whether each token given by its groups' codes (n, G) is in the vocabulary (n,)."""
        tokens = codes @ self.radix
        at = np.searchsorted(self.tokens, tokens).clip(max=len(self.tokens) - 1)
        return self.tokens[at] == tokens

    def best(self, log_probs: np.ndarray, temperature: float, rng: np.random.Generator) -> np.ndarray:
        """Each token's code of each group (n, G) from its groups' log-probabilities (n, G, K):
        the most likely token of the vocabulary, or with a temperature, one drawn from it."""
        scores = sum(log_probs[:, g, self.codes[:, g]] for g in range(self.codes.shape[1]))  # (n, S)
        if temperature > 0:
            scores = scores / temperature + gumbel(rng, scores.shape)
        return self.codes[scores.argmax(axis=1)]

    def keep_to(self, codes: np.ndarray, log_probs: np.ndarray, temperature: float,
                rng: np.random.Generator) -> np.ndarray:
        """The codes (n, G), each token outside the vocabulary chosen again within it."""
        outside = ~self.holds(codes)
        if outside.any():
            codes[outside] = self.best(log_probs[outside], temperature, rng)
        return codes


class RowVocabulary:
    """A vocabulary for each row of tokens: the tokens real frames show in that row. The
    skier is only ever drawn in a couple of rows, so its colours kept to them cannot appear
    further down the slope, where the head may give them to a tree it runs into. Tokens
    (n, G) are taken in grid order, frame after frame."""

    def __init__(self, rows: list[np.ndarray], width: int, codes_per_group: int, groups: int):
        self.rows = [Vocabulary(np.asarray(r), codes_per_group, groups) for r in rows]
        self.width = width

    def keep_to(self, codes: np.ndarray, log_probs: np.ndarray, temperature: float,
                rng: np.random.Generator) -> np.ndarray:
        row = np.arange(len(codes)) % (len(self.rows) * self.width) // self.width
        for r, vocabulary in enumerate(self.rows):
            at = row == r
            codes[at] = vocabulary.keep_to(codes[at], log_probs[at], temperature, rng)
        return codes


def gumbel(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Gumbel(0, 1) noise: the argmax of log-probabilities plus it is a draw."""
    return -np.log(-np.log(rng.uniform(1e-9, 1 - 1e-9, shape)))


def choose_codes(log_probs: np.ndarray, temperature: float, rng: np.random.Generator,
                 vocabulary: Vocabulary | RowVocabulary | None = None) -> np.ndarray:
    """Each token's code of each group (n, G) from log-probabilities (n, G, K): each group's
    most likely (temperature 0) or drawn (Gumbel-max) code; with a vocabulary, a token
    outside it is chosen again among the vocabulary's. The scores add over the groups, so
    where the groups' choice is in the vocabulary it is also the vocabulary's best; drawing,
    a rejected draw is drawn again from the vocabulary alone, which keeps the draw exact."""
    if temperature > 0:
        codes = (log_probs / temperature + gumbel(rng, log_probs.shape)).argmax(axis=2)
    else:
        codes = log_probs.argmax(axis=2)
    return codes if vocabulary is None else vocabulary.keep_to(codes, log_probs, temperature, rng)


def maskgit(logits_of: Callable[[np.ndarray], np.ndarray], n_tokens: int, mask_id: int, sampling: Sampling,
            rng: np.random.Generator, groups: int = 1,
            vocabulary: Vocabulary | RowVocabulary | None = None) -> np.ndarray:
    """MaskGIT: start all masked; each pass fills the masked tokens from `logits_of(tokens)`
    (n_tokens, groups * K: each group's code logits) and masks again the least confident of
    them, fewer each pass (cosine schedule), none after the last. A token is one code of each
    group (idx_0 * K^(G-1) + ... + idx_(G-1)), chosen by `choose_codes`; its confidence is
    the sum of its codes' log-probabilities."""
    tokens = np.full(n_tokens, mask_id, np.int64)
    masked = np.ones(n_tokens, bool)
    for still_masked in maskgit_schedule(n_tokens, sampling.steps):
        logits = logits_of(tokens).reshape(n_tokens, groups, -1)
        log_probs = logits - logits.max(axis=2, keepdims=True)
        log_probs -= np.log(np.exp(log_probs).sum(axis=2, keepdims=True))
        # Every token is chosen, the unmasked ones too (and their choice dropped), so that a
        # seed draws the same noise whatever the passes keep.
        codes = choose_codes(log_probs, sampling.temperature, rng, vocabulary)
        picked = np.take_along_axis(log_probs, codes[..., None], axis=2)[..., 0].sum(axis=1)
        confidence = np.where(masked, picked, np.inf)
        tokens = np.where(masked, codes @ radix(log_probs.shape[2], groups), tokens)
        masked[:] = False
        if still_masked:
            least = np.argsort(confidence, kind="stable")[:still_masked]
            tokens[least], masked[least] = mask_id, True
    return tokens
