"""Train the Skiing dynamics model (ST-transformer, MaskGIT objective) on tokenized episodes.

Episodes are tokenized once with the exported tokenizer (onnxruntime) and cached beside
them in `tokens/<tokenizer id>/`; a training example is a clip of `context` consecutive frames' tokens and
the actions that led to each frame (the first frame's action is "none").
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn

from neuralplay.errors import UserError
from neuralplay.games.skiing import HUD_ROWS, SKIER, SNOW
from neuralplay.models.st_transformer import STConfig, STTransformer
from neuralplay.models.vqvae import PATCH, patch_grid, radix, token_rows
from neuralplay.runtime.skiing import (MOTION_FRAMES, RowVocabulary, Sampling, Vocabulary, choose_codes,
                                       graph_columns, next_column, recent_motion, skier_columns)
from neuralplay.runtime.skier_state import STATE_FRAMES
from neuralplay.training import run_state
from neuralplay.training.loop import Pace, cosine_lr, lr_groups, parameters_not_in
from neuralplay.training.skiing_tokenizer import GraphOf
from neuralplay.training.skiing_data import episode_paths, load_episode, save_npz

HOW_TO_TRAIN = "train one with `neuralplay train skiing-dynamics`"
SKIER_SHIFT_PX = 6  # --shifted-context moves the past's skier by up to this many pixels


@dataclass
class DynamicsTrainConfig:
    data: str
    run_dir: str
    tokenizer: str | None = None  # folder of the tokenizer's graphs (default: the shipped one)
    steps: int = 6000
    batch_size: int = 16
    lr: float = 5e-4
    warmup: int = 200
    eval_every: int = 500
    ckpt_every: int = 250
    max_minutes: float | None = None
    threads: int = 2
    seed: int = 0
    init_from: str | None = None  # a dynamics run folder or exported checkpoint folder a new run starts from
    every_frame: bool = False  # predict every frame of a clip (context - 1 predictions), not only the last
    context: int | None = None  # frames the model sees (None: a warm start's source's, a new run's model.context)
    layers: int | None = None  # model layers (None: model.n_layers, or a warm start's source's; a warm start may add some)
    change_weight: float | None = None  # the model's loss weight of changing tokens, also on resume (None: keep)
    skier_weight: float | None = None  # the model's loss weight of the skier's tokens, also on resume (None: keep)
    hud_weight: float | None = None  # the model's loss weight of the HUD's tokens, also on resume (None: keep)
    stale_context: float = 0.0  # up to this share of the past frames' tokens the model reads stale (`stale_tokens`)
    open_loop_context: float = 0.0  # this share of the steps reads the past as the model's own open loop (`open_loop_context`)
    shifted_context: float = 0.0  # this share of the clips reads a past whose skier is off (`shifted_context`)
    skier_motion: bool = False  # a new or warm-started model gets skier_motion (STConfig); a resumed one keeps its own
    recent_noise: float = 0.0  # skier_motion: px a step of Gaussian noise on the recent motion the velocity head reads
    fresh_lr_scale: float = 1.0  # with init_from: learning rate of the parameters the source lacks, against the rest's
    fresh_parameters: list[str] = field(default_factory=list)  # those parameters (train sets it)
    model: STConfig = field(default_factory=STConfig)


def skier_tokens(frames: np.ndarray) -> np.ndarray:
    """(T, H, W) palette frames -> (T, rows * cols) bool: the grid cells (the tokenizer's 8x8
    patches, the frame padded with snow below) that hold a pixel of the skier's colour."""
    return (patch_grid(frames) == SKIER).any(axis=-1).reshape(len(frames), -1)


def hud_tokens(grid: tuple[int, int]) -> np.ndarray:
    """(rows * cols,) bool: the grid cells that hold a row of the HUD (HUD_ROWS)."""
    rows, cols = grid
    return np.repeat(np.arange(rows) < token_rows(HUD_ROWS), cols)


def tokenize_split(data_dir: Path, split: str, tokenizer, with_frames: bool = False) -> list[dict]:
    """Tokens, actions, the skier's tokens (skier_tokens) and columns (runtime.skiing.
    skier_columns) of every episode of a split, cached per tokenizer in
    data_dir/tokens/<encoder id>/split/; and the skier's recent motion and, with_frames,
    the frames themselves (not cached)."""
    out, paths = [], episode_paths(data_dir / split)
    cache = data_dir / "tokens" / tokenizer.encoder_ckpt.identity.replace("@", "-") / split
    cache.mkdir(parents=True, exist_ok=True)
    keys = ("tokens", "actions", "skier", "columns")
    for path in paths:
        cached = cache / path.name
        episode = {}
        if cached.exists() and cached.stat().st_mtime >= path.stat().st_mtime:
            with np.load(cached, allow_pickle=False) as f:
                episode = {key: f[key] for key in keys if key in f.files}
        loaded = None
        if len(episode) < len(keys):
            loaded = load_episode(path)
            frames = loaded["frames"]
            if "tokens" not in episode:  # the slow part: a cache from before the columns keeps its tokens
                tokens = tokenizer.encode(frames)
                episode["tokens"] = tokens.reshape(len(tokens), -1)
            episode.update(actions=loaded["actions"], skier=skier_tokens(frames), columns=skier_columns(frames))
            save_npz(cached, **episode)
        if with_frames:
            episode["frames"] = (loaded or load_episode(path))["frames"]
        out.append({**episode, "recent": recent_motion(episode["columns"])})
    return out


class Clips(NamedTuple):
    """A batch of clips of `context` frames (B, T, ...)."""

    tokens: torch.Tensor  # (B, T, N)
    actions: torch.Tensor  # (B, T): the action that led to each frame
    skier: torch.Tensor  # (B, T, N) bool: tokens that show the skier there or in the frame before
    columns: torch.Tensor  # (B, T) float: the skier's column, UNKNOWN_COLUMN where none
    recent: torch.Tensor  # (B, T) float: the skier's recent motion (runtime.skiing.recent_motion)
    where: torch.Tensor  # (B, 2): each clip's episode (its index in the list sampled) and first frame


def sample_clips(episodes: list[dict], n: int, context: int, n_actions: int, rng: np.random.Generator) -> Clips:
    """n clips of `context` consecutive frames, each from a random episode and start."""
    tokens, actions, skier, columns, recent, where = [], [], [], [], [], []
    usable = [i for i, e in enumerate(episodes) if len(e["tokens"]) >= context]
    for _ in range(n):
        index = usable[rng.integers(len(usable))]
        ep = episodes[index]
        start = int(rng.integers(len(ep["tokens"]) - context + 1))
        where.append((index, start))
        end = start + context
        tokens.append(ep["tokens"][start:end])
        led = [ep["actions"][t - 1] if t >= 1 else n_actions for t in range(start, end)]
        actions.append(led)
        shown = ep["skier"][start:end].copy()  # where the skier is, or where it was a frame before
        shown[1:] |= ep["skier"][start:end - 1]
        if start:
            shown[0] |= ep["skier"][start - 1]
        skier.append(shown)
        columns.append(graph_columns(ep["columns"][start:end]))
        recent.append(ep["recent"][start:end])
    return Clips(torch.from_numpy(np.stack(tokens)).long(), torch.tensor(actions, dtype=torch.long),
                 torch.from_numpy(np.stack(skier)), torch.from_numpy(np.stack(columns)),
                 torch.from_numpy(np.stack(recent)), torch.tensor(where, dtype=torch.long))


def stale_tokens(tokens: torch.Tensor, rate: float, generator: torch.Generator) -> torch.Tensor:
    """Clips (B, T, N) as an open loop that missed some changes would show them: in every
    frame but the first and the last (the one predicted), each token keeps, with a chance
    drawn per clip from U(0, rate), the token it has in the frame before as shown (so a miss
    can last); the rest are the real ones. The model learns to carry on from such a past
    rather than take a stalled slope or skier for a stopped one."""
    b, t, n = tokens.shape
    chance = torch.rand(b, 1, generator=generator) * rate
    shown = tokens.clone()
    for f in range(1, t - 1):
        stale = torch.rand(b, n, generator=generator) < chance
        shown[:, f] = torch.where(stale, shown[:, f - 1], tokens[:, f])
    return shown


def shift_skier(frames: np.ndarray, shift: int) -> np.ndarray:
    """Palette frames (T, H, W) with the skier's pixels moved `shift` columns: snow where it
    was, cut off at the frame's edges."""
    out = frames.copy()
    t, y, x = np.nonzero(frames == SKIER)
    out[t, y, x] = SNOW
    inside = (x + shift >= 0) & (x + shift < frames.shape[2])
    out[t[inside], y[inside], x[inside] + shift] = SKIER
    return out


def shifted_context(clips: Clips, episodes: list[dict], tokenizer, share: float,
                    rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The past of a share of the clips as an open loop whose skier fell behind shows it:
    every past frame's skier moved 1 to SKIER_SHIFT_PX pixels sideways (the same way and
    distance over the clip, drawn per clip), its column with it, the frames encoded again;
    the frame predicted stays real. A skier_motion model learns from them to draw the
    skier where its column says, not where the frames before have it. `episodes` hold
    their frames (`tokenize_split(..., with_frames=True)`). Returns the tokens and columns
    shown (B, T, ...)."""
    tokens, columns = clips.tokens.clone(), clips.columns.clone()
    past = tokens.shape[1] - 1
    chosen = np.flatnonzero(rng.random(len(tokens)) < share)
    if not len(chosen):
        return tokens, columns
    shifted = []
    for i in chosen:
        shift = int(rng.integers(1, SKIER_SHIFT_PX + 1)) * int(rng.choice([-1, 1]))
        episode, start = clips.where[i].tolist()
        shifted.append(shift_skier(episodes[episode]["frames"][start:start + past], shift))
    frames = np.concatenate(shifted)
    encoded = tokenizer.encode(frames)
    tokens[chosen, :past] = torch.from_numpy(encoded.reshape(len(chosen), past, -1)).to(tokens.dtype)
    columns[chosen, :past] = torch.from_numpy(graph_columns(skier_columns(frames)).reshape(len(chosen), past))
    return tokens, columns


@torch.no_grad()
def open_loop_context(model: STTransformer, tokens: torch.Tensor, actions: torch.Tensor, real: int,
                      vocabulary: Vocabulary | RowVocabulary | None = None, columns: torch.Tensor | None = None,
                      recent: torch.Tensor | None = None) -> torch.Tensor:
    """Clips (B, T, N) as the model's own open loop shows them: the first `real` frames are
    the real ones; each later frame but the last (the one predicted) is the model's guess
    from the frames shown before it, one MaskGIT pass decoded as the runtime decodes it
    (`choose_codes`: the most likely codes, kept to `vocabulary`). Unlike the runtime, which
    always reads a full window of context - 1 frames, a guess here reads only the frames of
    the clip before it; a skier_motion model reads the real skier columns and recent motion
    (B, T) beside its guesses. Trained on such pasts toward the real frames, the model is to learn
    to carry on from its own misses instead of taking a slope it failed to scroll for a
    stopped one."""
    b, t, n = tokens.shape
    cfg = model.cfg
    shown = tokens.clone()
    motion = cfg.skier_motion
    skier_past = (columns[:, :real], recent[:, real - 1]) if motion else ()
    cache = model.prefill(tokens[:, :real], actions[:, :real], *skier_past)
    cache = cache[0] if motion else cache
    all_masked = torch.full((b, n), cfg.mask_id, dtype=tokens.dtype)
    place = radix(cfg.codes_per_group, cfg.groups)
    for f in range(real, t - 1):
        skier = (columns[:, f], recent[:, f]) if motion else ()
        logits = model.step(all_masked, actions[:, f], cache, *skier)[0]
        log_probs = torch.log_softmax(logits.reshape(b * n, cfg.groups, cfg.codes_per_group), dim=-1).numpy()
        codes = torch.from_numpy(choose_codes(log_probs, 0.0, np.random.default_rng(0), vocabulary))
        shown[:, f] = (codes * place).sum(-1).reshape(b, n)
        cache = model.append(cache, model.step(shown[:, f], actions[:, f], cache, *skier)[1])
    return shown


def training_vocabulary(data_dir: Path, tokenizer) -> list[list[int]]:
    """The tokens of `token_vocabulary` over the training episodes of `data_dir`, row by row
    of the grid, for an export."""
    if not any((data_dir / "train").glob("*.npz")):
        raise UserError(f"no training episodes in {data_dir / 'train'} to take the token vocabulary from: pass "
                        "the --data the model was trained on, or export with --any-token")
    return [row.tokens.tolist() for row in token_vocabulary(tokenize_split(data_dir, "train", tokenizer),
                                                            tokenizer).rows]


def token_vocabulary(episodes: list[dict], tokenizer) -> RowVocabulary:
    """The tokens the tokenizer gives each row of the frames of tokenized episodes
    (`tokenize_split`), which decoding keeps to (`RowVocabulary`)."""
    rows, width = tokenizer.grid
    tokens = np.concatenate([e["tokens"] for e in episodes]).reshape(-1, rows, width)
    return RowVocabulary([tokens[:, r].ravel() for r in range(rows)], width, tokenizer.codes_per_group,
                         tokenizer.groups)


@torch.no_grad()
def rollout_strip(model: STTransformer, tokenizer, episode: dict, start: int, horizon: int = 8,
                  maskgit_steps: int = 3, vocabulary: Vocabulary | RowVocabulary | None = None) -> np.ndarray:
    """Open loop from `context - 1` frames of a tokenized episode under its own actions, as
    the runtime plays it (decoding kept to `vocabulary`, as an export's is; a skier_motion
    model's skier column integrated from its velocities): an RGB image, the episode's frames
    (through the tokenizer) above the model's, `horizon` frames side by side."""
    from neuralplay.games.skiing import to_rgb
    from neuralplay.runtime.skiing import maskgit

    cfg = model.cfg
    past = cfg.context - 1
    start = max(1, min(start, len(episode["tokens"]) - past - horizon))
    ep_tokens, ep_actions = torch.from_numpy(episode["tokens"]).long(), torch.from_numpy(episode["actions"]).long()
    columns = episode["columns"][:start + past]  # NaN where unknown; the runtime keeps the last MOTION_FRAMES + 1

    def skier() -> tuple[torch.Tensor, ...]:
        """The last frame's column and recent motion, for a skier_motion model."""
        if not cfg.skier_motion:
            return ()
        recent = recent_motion(columns[-(MOTION_FRAMES + 1):])[-1:]
        return (torch.from_numpy(graph_columns(columns[-1:])), torch.from_numpy(recent))

    cache = model.prefill(ep_tokens[None, start:start + past], ep_actions[None, start - 1:start + past - 1],
                          *((torch.from_numpy(graph_columns(columns[-past:]))[None], skier()[1])
                            if cfg.skier_motion else ()))
    cache, velocities = cache if cfg.skier_motion else (cache, None)
    predicted = []
    for t in range(start + past, start + past + horizon):
        action = ep_actions[t - 1:t]
        if cfg.skier_motion:
            column = next_column(columns[-1], velocities[0, action].item(), PATCH * cfg.grid[1])
            columns = np.append(columns, np.float32(column))

        def logits_of(tokens: np.ndarray) -> np.ndarray:
            return model.step(torch.from_numpy(tokens)[None], action, cache, *skier())[0][0].numpy()

        tokens = maskgit(logits_of, cfg.tokens, cfg.mask_id, Sampling(steps=maskgit_steps), np.random.default_rng(0),
                         cfg.groups, vocabulary)
        out = model.step(torch.from_numpy(tokens)[None], action, cache, *skier())
        cache = model.append(cache, out[1])
        velocities = out[2] if cfg.skier_motion else None
        predicted.append(tokens)
    true = episode["tokens"][start + past:start + past + horizon]
    rows = [tokenizer.decode(np.stack(t).reshape(horizon, *cfg.grid)) for t in (true, predicted)]
    return np.concatenate([np.concatenate(list(to_rgb(r)), axis=1) for r in rows], axis=0)


def st_config(stored: dict) -> STConfig:
    """A model config as a run's config.json or a checkpoint's metadata stores it."""
    fields = {key: value for key, value in stored.items() if key != "mask_id"}  # the metadata adds mask_id
    return STConfig(**dict(fields, grid=tuple(fields["grid"])))


def saved_model_config(run_dir: Path) -> STConfig:
    """The model config a dynamics run was trained with."""
    return st_config(run_state.config(run_dir, HOW_TO_TRAIN)["model"])


def load_model(run_dir: Path) -> tuple[STTransformer, dict]:
    model = STTransformer(saved_model_config(run_dir))
    run_state.load(run_dir, {"model": model}, HOW_TO_TRAIN)
    return model.eval(), run_state.config(run_dir, HOW_TO_TRAIN)


def model_from_checkpoint(folder: Path) -> STTransformer:
    """The torch model inside an exported checkpoint folder (the inverse of `export_graphs`):
    a shipped model can be fine-tuned without its run folder. Embeddings and norms keep their
    parameter names in the step graph; each linear layer's weight is stored transposed under
    another name, read off the MatMul whose output its bias is added to. A parity check on
    random tokens proves the weights went back where they came from."""
    import onnx
    from onnx import numpy_helper

    from neuralplay.runtime.checkpoint import onnx_session
    from neuralplay.runtime.skiing import load_dynamics

    step = load_dynamics(folder)[1]
    fix = "start from a dynamics run folder instead (--init-from RUN)"
    model = STTransformer(st_config(step.meta["model"]))
    graph = onnx.load(str(step.onnx_path)).graph
    stored = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    weights = {name.removeprefix("model."): array for name, array in stored.items()}
    made_by = {out: node for node in graph.node for out in node.output}
    for node in graph.node:
        bias = next((name for name in node.input if name.endswith(".bias") and name in stored), None)
        producer = next((made_by[name] for name in node.input if name in made_by), None)
        if node.op_type == "Add" and bias and producer is not None and producer.op_type == "MatMul":
            weights[bias.removeprefix("model.").removesuffix("bias") + "weight"] = stored[producer.input[1]].T
    state = model.state_dict()
    missing = [name for name in state if name not in weights or weights[name].shape != tuple(state[name].shape)]
    if missing:
        raise UserError(f"{step.onnx_path} does not hold the weights of its stored config ({missing[0]}): {fix}")
    model.load_state_dict({name: torch.from_numpy(weights[name].copy()) for name in state})
    model.eval()
    cfg = model.cfg
    rng = np.random.default_rng(0)
    tokens = torch.from_numpy(rng.integers(0, cfg.codebook_size, (1, cfg.context, cfg.tokens)))
    actions = torch.from_numpy(rng.integers(0, cfg.n_actions, (1, cfg.context)))
    skier = {}
    if cfg.skier_motion:
        skier = {"column": torch.from_numpy(rng.uniform(0, 80, 1).astype(np.float32)),
                 "recent": torch.from_numpy(rng.uniform(-1, 1, 1).astype(np.float32))}
    with torch.no_grad():
        cache = model.prefill(tokens[:, :-1], actions[:, :-1], *((skier["column"].expand(1, cfg.context - 1),
                                                                 skier["recent"]) if skier else ()))
        cache = cache[0] if skier else cache
        expected = model.step(tokens[:, -1], actions[:, -1], cache, *((skier["column"], skier["recent"])
                                                                       if skier else ()))
    feeds = {"tokens": tokens[:, -1].numpy(), "action": actions[:, -1].numpy(), "cache": cache.numpy(),
             **{name: value.numpy() for name, value in skier.items()}}
    got = onnx_session(step.onnx_path, 1).run(None, feeds)
    outputs = [0, 2] if skier else [0]  # the logits, and a skier_motion model's velocities
    if max(np.abs(got[i] - expected[i].numpy()).max() for i in outputs) > 1e-3:
        raise UserError(f"weights read back from {step.onnx_path} disagree with its graph: {fix}")
    return model


def source_model_config(source: Path) -> STConfig:
    """The model config of what --init-from names: a dynamics run folder or a checkpoint folder."""
    if run_state.is_run(source):
        return saved_model_config(source)
    from neuralplay.runtime.skiing import load_dynamics

    return st_config(load_dynamics(source)[1].meta["model"])


def warm_start(model: STTransformer, source: Path) -> None:
    """Load the weights of a dynamics run or checkpoint folder into `model`. Layers the source
    lacks come after its own and start as identity (each residual branch's output layer is
    zero), so the model starts as the source and grows from there. Where this run's tokenizer
    has another number of codes than the source's, the token embedding and the head start
    fresh; the layers between them keep the source's weights."""
    start = load_model(source)[0] if run_state.is_run(source) else model_from_checkpoint(source)
    own = model.state_dict()
    same = {name: value for name, value in start.state_dict().items() if value.shape == own[name].shape}
    model.load_state_dict(same, strict=False)  # model_config made the rest the same
    for block in model.blocks[start.cfg.n_layers:]:
        for output in (block.spatial.out, block.temporal.out, block.ff[-1]):
            nn.init.zeros_(output.weight)
            nn.init.zeros_(output.bias)


def fresh_parameters(model: STTransformer, source: Path) -> set[str]:
    """Names of the model's parameters that a warm start from `source` does not set: the
    layers it adds, the skier_motion parts the source lacks, and the token embedding and
    head where the source's codebooks differ (same names, other shapes)."""
    return parameters_not_in(model, STTransformer(source_model_config(source)))


def model_config(cfg: DynamicsTrainConfig, saved: dict, tokenizer) -> STConfig:
    """A resumed run keeps its model (`saved`: its stored config; empty for a new run); a
    warm start takes its source's, with cfg.context where given (time enters only as rotary
    positions, so the weights serve any context) and, where cfg.layers asks for more, more
    layers (`warm_start`) and, where cfg.skier_motion asks, skier_motion (its parts start so
    that the model starts as the source); a new run takes cfg.model (and cfg.context,
    cfg.layers, cfg.skier_motion). Codebook and groups
    always come from the tokenizer, the loss weights of changing tokens, the skier's and the
    HUD's from cfg where given."""
    if saved:
        model = st_config(saved["model"])
    elif cfg.init_from:
        source = source_model_config(Path(cfg.init_from))
        layers = cfg.layers or source.n_layers
        if layers < source.n_layers:
            raise UserError(f"--layers {layers}: {cfg.init_from} has {source.n_layers} layers; a warm start "
                            "keeps them all and may add more")
        model = replace(source, context=cfg.context or source.context, n_layers=layers,
                        skier_motion=source.skier_motion or cfg.skier_motion)
    else:
        model = replace(cfg.model, context=cfg.context or cfg.model.context, n_layers=cfg.layers or cfg.model.n_layers,
                        skier_motion=cfg.skier_motion)
    for weight in ("change_weight", "skier_weight", "hud_weight"):  # loss weights, not the architecture: they may change on resume
        if getattr(cfg, weight) is not None:
            model = replace(model, **{weight: getattr(cfg, weight)})
    model.codebook_size, model.groups = tokenizer.codebook_size, tokenizer.groups
    return model


def train(cfg: DynamicsTrainConfig, resume: bool = False, show_progress: bool = True) -> dict:
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    from neuralplay.runtime.skiing_tokenizer import SkiingTokenizer

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = run_state.config(run_dir, HOW_TO_TRAIN) if resume and (run_dir / run_state.CONFIG).exists() else {}
    run_state.keep_lineage(cfg, saved, ("init_from", "fresh_parameters", "fresh_lr_scale"))
    tokenizer = SkiingTokenizer(cfg.tokenizer, threads=cfg.threads)
    cfg.model = model_config(cfg, saved, tokenizer)
    if cfg.recent_noise > 0 and not cfg.model.skier_motion:
        raise UserError(f"--recent-noise {cfg.recent_noise}: only a --skier-motion model reads the recent motion")
    data_dir = Path(cfg.data)
    train_eps = tokenize_split(data_dir, "train", tokenizer, with_frames=cfg.shifted_context > 0)
    heldout_eps = tokenize_split(data_dir, "heldout", tokenizer)
    vocabulary = token_vocabulary(train_eps, tokenizer)
    model = STTransformer(cfg.model)
    if cfg.init_from and not saved:
        cfg.fresh_parameters = sorted(fresh_parameters(model, Path(cfg.init_from)))
    if cfg.init_from and not resume:
        warm_start(model, Path(cfg.init_from))
    if saved and "fresh_parameters" not in saved:  # a run from before the groups: its optimiser saved one
        groups = [{"params": list(model.parameters()), "scale": 1.0}]
    else:
        groups = lr_groups(model, set(cfg.fresh_parameters), cfg.fresh_lr_scale)
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=0.01)
    parts = {"model": model, "opt": opt}
    step = run_state.load(run_dir, parts, "start without --resume") if resume else 0
    writer = SummaryWriter(str(run_dir / "logs"))
    metrics: dict = {}
    hud = torch.from_numpy(hud_tokens(cfg.model.grid))

    def regions(skier: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"skier": skier, "hud": hud.expand_as(skier)}

    def loss_of(clips: Clips, generator: torch.Generator, shown: torch.Tensor | None = None,
                shown_columns: torch.Tensor | None = None, recent: torch.Tensor | None = None):
        return model.loss(clips.tokens, clips.actions, generator, regions(clips.skier), every_frame=cfg.every_frame,
                          context=shown, columns=clips.columns,
                          recent=clips.recent if recent is None else recent, context_columns=shown_columns)

    heldout = sample_clips(heldout_eps, 256, cfg.model.context, cfg.model.n_actions, np.random.default_rng(1))
    bar = tqdm(total=cfg.steps, initial=step, desc="train skiing-dynamics", disable=not show_progress)
    pace = Pace(cfg, run_dir, parts, bar)

    def evaluate(step: int) -> dict:
        model.eval()
        with torch.no_grad():
            h_loss, h_stats = loss_of(heldout, torch.Generator().manual_seed(0))
        episode = max(heldout_eps, key=lambda e: len(e["tokens"]))
        writer.add_image("rollout (tokenized ALE above, neural below)",
                         rollout_strip(model, tokenizer, episode, start=len(episode["tokens"]) // 2,
                                       vocabulary=vocabulary), step,
                         dataformats="HWC")
        model.train()
        metrics = {"heldout_loss": h_loss.item(), **{f"heldout_{k}": v.item() for k, v in h_stats.items()}}
        for key, value in metrics.items():
            writer.add_scalar(f"heldout/{key}", value, step)
        bar.write(f"step {step}: {json.dumps(metrics)}")
        return metrics

    while step < cfg.steps:
        clips = sample_clips(train_eps, cfg.batch_size, cfg.model.context, cfg.model.n_actions, rng)
        for group in opt.param_groups:
            scale = group.get("scale", 1.0)  # an older run's optimiser saved none
            group["lr"] = cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup) * scale
        shown = stale_tokens(clips.tokens, cfg.stale_context, gen) if cfg.stale_context > 0 else None
        shown_columns = None
        if cfg.shifted_context > 0:
            shown, shown_columns = shifted_context(clips, train_eps, tokenizer, cfg.shifted_context, rng)
        if cfg.open_loop_context > 0 and rng.random() < cfg.open_loop_context:
            shown = open_loop_context(model, clips.tokens, clips.actions,
                                      int(rng.integers(1, max(2, cfg.model.context - 1))), vocabulary,
                                      clips.columns, clips.recent)
        loss, stats = loss_of(clips, gen, shown, shown_columns, noisy_recent(clips.recent, cfg.recent_noise, gen))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        bar.update(1)
        if step % 50 == 0:
            writer.add_scalar("loss/masked_tokens", loss.item(), step)
            for key, value in stats.items():
                writer.add_scalar(f"train/{key}", value.item(), step)
        evaluated, stop = pace.after_step(step, evaluate)
        metrics = evaluated or metrics
        if stop:
            break
    bar.close()
    writer.close()
    return {"step": step, **metrics}


def noisy_recent(recent: torch.Tensor, noise: float, generator: torch.Generator) -> torch.Tensor:
    """The skier's recent motion (B, T) as the velocity head reads it in training: with
    Gaussian noise of `noise` px a step. In the open loop the recent motion is the runtime's
    own integrated column's, so a head that leans on it feeds its own errors back (a drift
    that `tools/skier_motion.py` measures); the noise makes it lean on it less."""
    if noise <= 0:
        return recent
    return recent + noise * torch.randn(recent.shape, generator=generator)


def export_graphs(model: STTransformer, out_dir: Path, meta: dict, step_meta: dict | None = None) -> list[Path]:
    """The prefill and step graphs (batch 1, a cache of context - 1 frames) with metadata
    (`step_meta`: what only the step graph's holds)."""
    from neuralplay.runtime.checkpoint import write_metadata
    from neuralplay.runtime.skiing import GAME, PREFILL_KIND, PREFILL_NAME, STEP_KIND, STEP_NAME, UNKNOWN_COLUMN

    model = model.eval()
    cfg = model.cfg
    past, n = cfg.context - 1, cfg.tokens
    tokens = torch.zeros(1, past, n, dtype=torch.long)
    actions = torch.full((1, past), cfg.n_actions, dtype=torch.long)
    out_dir.mkdir(parents=True, exist_ok=True)
    prefill_path, step_path = out_dir / f"{PREFILL_NAME}.onnx", out_dir / f"{STEP_NAME}.onnx"
    motion = cfg.skier_motion
    columns, recent = torch.full((1, past), 40.0), torch.zeros(1)
    with torch.no_grad():
        cache = model.prefill(tokens, actions, *((columns, recent) if motion else ()))
        cache = cache[0] if motion else cache
        torch.onnx.export(GraphOf(model, "prefill"), (tokens, actions, *((columns, recent) if motion else ())),
                          str(prefill_path), dynamo=False, opset_version=17,
                          input_names=["tokens", "actions", *(["columns", "recent"] if motion else [])],
                          output_names=["cache", *(["velocities"] if motion else [])])
        torch.onnx.export(GraphOf(model, "step"), (tokens[:, 0], actions[:, 0], cache,
                                                   *((columns[:, 0], recent) if motion else ())),
                          str(step_path), dynamo=False, opset_version=17,
                          input_names=["tokens", "action", "cache", *(["column", "recent"] if motion else [])],
                          output_names=["logits", "new", *(["velocities"] if motion else [])])
    cache_shape = list(cache.shape)
    common = {"game": GAME, **meta, "model": {**asdict(cfg), "mask_id": cfg.mask_id}}
    prefill_io = {"inputs": {"tokens": f"int64 (1, {past}, {n})", "actions": f"int64 (1, {past})"},
                  "outputs": {"cache": f"float32 {cache_shape}"}}
    step_io = {"inputs": {"tokens": f"int64 (1, {n}), mask_id where unknown", "action": "int64 (1,)",
                          "cache": f"float32 {cache_shape}"},
               "outputs": {"logits": f"float32 (1, {n}, {cfg.groups * cfg.codes_per_group}): "
                                     f"{cfg.groups} group(s) of {cfg.codes_per_group} code logits",
                           "new": f"float32 {cache_shape[:4] + [1] + cache_shape[5:]}"}}
    if motion:
        velocities = f"float32 (1, {cfg.n_actions}): the skier's column change to the next frame under each action"
        prefill_io["inputs"].update(columns=f"float32 (1, {past}): the skier's column, {UNKNOWN_COLUMN} where none",
                                    recent="float32 (1,): the last frame's recent skier motion")
        prefill_io["outputs"]["velocities"] = velocities
        step_io["inputs"].update(column=f"float32 (1,): the frame's skier column, {UNKNOWN_COLUMN} where none",
                                 recent="float32 (1,): the frame's recent skier motion")
        step_io["outputs"]["velocities"] = velocities
    return [write_metadata(prefill_path, {**common, "model_kind": PREFILL_KIND, **prefill_io}),
            write_metadata(step_path, {**common, "model_kind": STEP_KIND, **step_io, **(step_meta or {})})]


def make_starts(count: int, frames: int, seed: int = 0, frameskip: int = 4, steps: int = 30) -> list:
    """Start states from the real game: reset with seed + i, then `steps` of a held-random
    player, so the starts differ in where the skier is and what is near."""
    from neuralplay.games.skiing import HeldRandomPlayer, SkiingGame, downsample, to_palette
    from neuralplay.runtime.skiing import StartState

    game, starts = SkiingGame(frameskip=frameskip), []
    for i in range(count):
        game.reset(seed + i)
        player = HeldRandomPlayer(seed + i)
        shown = [downsample(to_palette(game.frame))]
        actions = []
        for _ in range(max(steps, frames - 1)):
            actions.append(player.act(shown[-1]))
            game.step(actions[-1])
            shown.append(downsample(to_palette(game.frame)))
        starts.append(StartState(seed + i, np.array(actions, np.int64), np.stack(shown[-frames:])))
    return starts


def reward_per_step(data_dir: Path) -> float:
    """ALE's Skiing reward is minus the elapsed time: its median per step in the data."""
    rewards = [load_episode(p)["rewards"] for p in sorted((data_dir / "train").glob("*.npz"))]
    return float(np.median(np.concatenate(rewards))) if rewards else 0.0


def export(run_dir: Path, out_dir: Path, data_dir: Path, tokenizer_dir: str | None = None,
           starts: int = 8, sampling: Sampling | None = None, vocabulary: bool = True) -> list[Path]:
    """Graphs, start states and metadata (with the MaskGIT passes the runtime makes a frame:
    `sampling`'s, 3 by default, and with `vocabulary` the tokens the tokenizer gives the
    training frames, row by row, which the runtime's decoding keeps to: `RowVocabulary`); the
    metrics measured by the runtime go in last, with skier-state tables where `out_dir`
    already holds them (`neuralplay train skier-state --out OUT_DIR` first)."""
    from neuralplay import __version__
    from neuralplay.runtime.skiing import STARTS_FILE, NeuralSkiing, save_starts
    from neuralplay.runtime.skiing_tokenizer import SkiingTokenizer

    model, cfg = load_model(run_dir)
    tokenizer = SkiingTokenizer(tokenizer_dir, threads=2)
    meta = {"neuralplay_version": __version__, "config": cfg, "tokenizer": tokenizer.identity,
            "maskgit_steps": (sampling or Sampling()).steps,
            "reward_per_step": reward_per_step(data_dir),
            "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    step_only = {"token_vocabulary_by_row": training_vocabulary(data_dir, tokenizer)} if vocabulary else {}
    out_dir.mkdir(parents=True, exist_ok=True)
    # A skier_motion model's start holds enough frames to read the skier's state off (with
    # tables beside it), and its recent motion.
    past = model.cfg.context - 1
    shown = max(past, MOTION_FRAMES + 1, STATE_FRAMES) if model.cfg.skier_motion else past
    save_starts(out_dir / STARTS_FILE, make_starts(starts, shown))
    paths = export_graphs(model, out_dir, meta, step_only)
    from neuralplay.training.skiing_dynamics_eval import evaluate_dynamics

    metrics = evaluate_dynamics(NeuralSkiing(out_dir, tokenizer, threads=2), data_dir / "heldout")
    for path in paths:  # the graphs stay as they are, so their hashes do too
        full = json.loads(path.read_text())
        path.write_text(json.dumps({**full, "metrics": metrics}, indent=2) + "\n")
    return paths
