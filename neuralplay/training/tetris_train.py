"""Train the Tetris GAN. Read top to bottom: data, models, one training step, eval, loop.

The generator's loss is a reconstruction loss (BCE against the true next board, with the
noise drawn from its posterior given the spawned piece) plus the adversarial loss of a
discriminator that judges (board, event, next board). With `ema_decay`, an exponential
moving average of the generator's weights is kept beside it, and it is the generator that is
evaluated, exported and warm-started from: late in training the GAN's weights jitter from
step to step, and their average does not. Runs are resumable: `ckpt.pt` holds the models,
optimisers, step and config; TensorBoard logs go to the run folder.
"""
from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neuralplay.errors import UserError
from neuralplay.games.tetris import EVENT_NAMES
from neuralplay.models.tetris_gan import (
    Discriminator, Generator, TetrisGANConfig, posterior_noise, reconstruction_loss, sample_noise,
)
from neuralplay.training import run_state, tetris_data
from neuralplay.training.loop import Pace, cosine_lr, lr_groups, parameters_not_in
from neuralplay.training.tetris_metrics import closed_loop, evaluate_set, predict_all


@dataclass
class TrainConfig:
    data: str
    run_dir: str
    steps: int = 14_000
    batch_size: int = 128
    lr: float = 1e-3
    lr_min: float = 2e-5
    warmup: int = 200
    adv_weight: float = 0.02
    changed_weight: float = 10.0  # loss weight of cells that change, against 1 for the rest
    balance_events: bool = True  # oversample rare events, locks and line clears
    focus_event: str | None = None  # an event (name) given an extra share of every batch
    focus_share: float = 0.0  # that share, spread equally over the event's lock / clear / move steps
    init_from: str | None = None  # a run folder or an exported checkpoint to start the generator from
    fresh_lr_scale: float = 1.0  # with init_from: learning rate of the layers the source lacks, against the rest's
    fresh_parameters: list[str] = field(default_factory=list)  # those layers' parameters (train sets it)
    disc_lr: float = 2e-4
    ema_decay: float = 0.0  # > 0: keep (and evaluate, export) this moving average of the generator
    eval_every: int = 1000
    eval_examples: int = 8_000
    eval_closed_loop_steps: int = 1000
    ckpt_every: int = 500
    max_minutes: float | None = None
    threads: int = 2
    seed: int = 0
    model: TetrisGANConfig = field(default_factory=TetrisGANConfig)


def torch_predictor(gen: Generator, seed: int):
    """(boards, events) -> next boards (uint8) with play-time noise, for the metrics."""
    g = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def predict(x: np.ndarray, event: np.ndarray) -> np.ndarray:
        logits = gen(torch.from_numpy(x), torch.from_numpy(event), sample_noise(len(x), g))
        return (logits > 0).to(torch.uint8).numpy()

    return predict


def transition_kind(x: np.ndarray, y: np.ndarray, spawn: np.ndarray) -> np.ndarray:
    """0: the piece moves (or nothing falls), 1: it locks, 2: it locks and clears lines,
    3: a spawn. Locks and clears are rare in play and the hardest steps to predict."""
    locks = x[:, 1].any(axis=(1, 2)) & ~y[:, 1].any(axis=(1, 2))
    clears = locks & (tetris_data.filled(y).sum(axis=(1, 2)) < tetris_data.filled(x).sum(axis=(1, 2)))
    return np.where(spawn >= 0, 3, np.where(clears, 2, locks.astype(np.int64)))


def _equal_share(category: np.ndarray) -> np.ndarray:
    """Weights that give every category present the same total weight (summing to 1)."""
    counts = np.bincount(category).astype(np.float64)
    present = np.count_nonzero(counts)
    return 1.0 / (counts[category] * present)


def example_weights(data: tetris_data.Transitions, balance: bool, focus_event: str | None = None,
                    focus_share: float = 0.0) -> torch.Tensor:
    """Sampling weights: uniform, or half of the batch with equal shares for spawns and each
    event type, half with equal shares for each (event, move / lock / lock with clear).
    `focus_share` of the batch then goes to the non-spawn steps of `focus_event`, equally
    to its moves, locks and clears: more practice for the event that lags."""
    kind = transition_kind(data.x, data.y, data.spawn)
    if balance:
        by_event = np.where(kind == 3, len(EVENT_NAMES), data.event)
        by_event_and_kind = np.where(kind == 3, 3 * len(EVENT_NAMES), data.event * 3 + kind)
        weights = 0.5 * _equal_share(by_event) + 0.5 * _equal_share(by_event_and_kind)
    else:
        weights = np.full(len(data), 1.0 / len(data))
    if focus_event is not None and focus_share > 0:
        if focus_event not in EVENT_NAMES:
            raise UserError(f"unknown event {focus_event!r} to focus on: one of {', '.join(EVENT_NAMES)}")
        focus = (data.event == EVENT_NAMES.index(focus_event)) & (kind < 3)
        if not focus.any():
            raise UserError(f"the training data holds no {focus_event} steps to focus on: collect more data")
        extra = np.zeros(len(data))
        extra[focus] = _equal_share(kind[focus])
        weights = (1 - focus_share) * weights + focus_share * extra
    return torch.from_numpy(weights)


def learning_rate(cfg: TrainConfig, step: int) -> float:
    return cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup, cfg.lr_min)


HOW_TO_TRAIN = "train one with `neuralplay train tetris`"


def generator_part(run_config: dict) -> str:
    """The name, in a run's checkpoint, of the generator it is used by: its average if it keeps one."""
    return "generator_ema" if run_config.get("ema_decay", 0.0) > 0 else "generator"


def load_generator(run_dir: Path) -> tuple[Generator, dict]:
    """The generator of a run (for export and eval), and the run's config as a dict."""
    cfg = run_state.config(run_dir, HOW_TO_TRAIN)
    gen = Generator(TetrisGANConfig(**cfg["model"]))
    run_state.load(run_dir, {generator_part(cfg): gen}, HOW_TO_TRAIN)
    return gen.eval(), cfg


@torch.no_grad()
def update_average(average: Generator, gen: Generator, decay: float) -> None:
    """average <- decay * average + (1 - decay) * gen, weight by weight."""
    for a, p in zip(average.parameters(), gen.parameters()):
        a.lerp_(p, 1.0 - decay)


def warm_start(gen: Generator, disc: Discriminator, source: Path) -> None:
    """Start from another run's generator and discriminator (a run folder), or from an
    exported checkpoint's generator (a fresh discriminator then learns beside it). The model
    may have a deeper column stream than the source (none at all included): the layers the
    source lacks start fresh, and since the rows read them through zero-initialised
    projections, the model starts as the source. It may also read the noise as a piece
    (`piece_from_noise`) where the source read its values; the same weights then start on
    one-hot inputs."""
    source_cfg = source_model_config(source)
    free = ("columns", "piece_from_noise")  # what a warm start may change; the rest is the size
    same = {k: v for k, v in source_cfg.items() if k not in free} == {
        k: v for k, v in asdict(gen.cfg).items() if k not in free}
    if not same or source_cfg.get("columns", 0) > gen.cfg.columns:
        raise UserError(f"{source} holds a model of another size ({source_cfg}): "
                        "start with its size (the CLI takes it from --init-from) or without --init-from")
    if run_state.is_run(source):
        source_gen = Generator(TetrisGANConfig(**source_cfg))
        part = generator_part(run_state.config(source, HOW_TO_TRAIN))
        run_state.load(source, {part: source_gen, "discriminator": disc}, HOW_TO_TRAIN)
    else:
        from neuralplay.training.tetris_export import generator_from_checkpoint

        source_gen = generator_from_checkpoint(source)[0]
    gen.load_state_dict(source_gen.state_dict(), strict=False)  # the size check rules out strays


def fresh_parameters(gen: Generator, source: Path) -> set[str]:
    """Names of the generator's parameters that a warm start from `source` does not set
    (the column-stream layers the source lacks)."""
    return parameters_not_in(gen, Generator(TetrisGANConfig(**source_model_config(source))))


def source_model_config(source: Path) -> dict:
    """The model config of a run folder or an exported checkpoint (what --init-from names)."""
    if run_state.is_run(source):
        return run_state.config(source, HOW_TO_TRAIN)["model"]
    from neuralplay.runtime.checkpoint import load_checkpoint
    from neuralplay.runtime.tetris import DEFAULT_CHECKPOINT, GAME, MODEL_KIND

    fix = "pass --init-from a run folder or a Tetris checkpoint (.json/.onnx)"
    return load_checkpoint(source, GAME, MODEL_KIND, DEFAULT_CHECKPOINT, fix).meta["config"]["model"]


def board_images(x: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Rows of (before | true | predicted) boards as one RGB image (H, W, 3) for TensorBoard."""
    from neuralplay.games.tetris_render import render_board

    gap = np.zeros((22 * 8, 8, 3), np.uint8)
    rows = [np.concatenate([render_board(a, 8), gap, render_board(b, 8), gap, render_board(c, 8)], 1)
            for a, b, c in zip(x, y, p)]
    return np.concatenate(rows, axis=0)


def log_eval(writer, gen: Generator, test: tetris_data.Transitions, step: int, cfg: TrainConfig) -> dict:
    gen.eval()
    n = min(cfg.eval_examples, len(test))
    x, e, y = test.x[:n], test.event[:n], test.y[:n]
    predict = torch_predictor(gen, cfg.seed)
    p = predict_all(predict, x, e)
    metrics = evaluate_set(x, e, y, p)
    metrics.update(closed_loop(predict, steps=cfg.eval_closed_loop_steps, seed=cfg.seed))
    gen.train()
    for key in ("cell_accuracy", "board_accuracy", "board_plausibility", "spawn_recall",
                "spawn_precision", "spawn_validity", "spawn_diversity", "board_accuracy_nonspawn",
                "closed_loop_rule_consistency"):
        if metrics[key] is not None:
            writer.add_scalar(f"test_play/{key}", metrics[key], step)
    for name, value in metrics["board_accuracy_nonspawn_by_event"].items():
        if value is not None:
            writer.add_scalar(f"test_play_by_event/{name}", value, step)
    pick = np.concatenate([np.flatnonzero(e == i)[:1] for i in range(len(EVENT_NAMES))])
    writer.add_image("predictions (before | true | predicted)", board_images(x[pick], y[pick], p[pick]),
                     step, dataformats="HWC")
    return metrics


def train(cfg: TrainConfig, resume: bool = False, show_progress: bool = True) -> dict:
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    if not 0 <= cfg.ema_decay < 1:
        raise UserError(f"--ema-decay {cfg.ema_decay}: a decay in [0, 1) (0: no average; 0.999 is usual)")
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = torch.Generator().manual_seed(cfg.seed)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data_dir = Path(cfg.data)
    train_set = tetris_data.load_training(data_dir)
    test_set = tetris_data.load(data_dir / "test_play.npz")
    X, E = torch.from_numpy(train_set.x), torch.from_numpy(train_set.event)
    Y, S = torch.from_numpy(train_set.y), torch.from_numpy(train_set.spawn)
    sampling = example_weights(train_set, cfg.balance_events, cfg.focus_event, cfg.focus_share)

    gen, disc = Generator(cfg.model), Discriminator(cfg.model)
    saved = run_state.config(run_dir, HOW_TO_TRAIN) if resume and (run_dir / run_state.CONFIG).exists() else {}
    if saved:  # a resumed run keeps its own average (its checkpoint holds one or not) and its lineage
        cfg.ema_decay = saved.get("ema_decay", 0.0)
        # its fresh layers too: the source may have changed since (a new shipped checkpoint)
        run_state.keep_lineage(cfg, saved, ("init_from", "fresh_parameters"))
    if cfg.init_from and "fresh_parameters" not in saved:
        cfg.fresh_parameters = sorted(fresh_parameters(gen, Path(cfg.init_from)))
    fresh = set(cfg.fresh_parameters)
    if cfg.init_from and not resume:
        warm_start(gen, disc, Path(cfg.init_from))
    opt_g = torch.optim.AdamW(lr_groups(gen, fresh, cfg.fresh_lr_scale), lr=cfg.lr, weight_decay=0.0)
    opt_d = torch.optim.AdamW(disc.parameters(), lr=cfg.disc_lr, betas=(0.5, 0.999), weight_decay=0.0)
    parts = {"generator": gen, "discriminator": disc, "opt_g": opt_g, "opt_d": opt_d}
    average = copy.deepcopy(gen) if cfg.ema_decay > 0 else None  # starts as the warm start
    if average is not None:
        parts["generator_ema"] = average
    step = run_state.load(run_dir, parts, "start without --resume") if resume else 0
    writer = SummaryWriter(str(run_dir / "logs"))
    metrics: dict = {}
    bar = tqdm(total=cfg.steps, initial=step, desc="train tetris", disable=not show_progress)
    pace = Pace(cfg, run_dir, parts, bar)

    def evaluate(step: int) -> dict:
        metrics = log_eval(writer, gen if average is None else average, test_set, step, cfg)
        summary = {k: metrics[k] for k in ("board_accuracy_nonspawn", "spawn_validity",
                                           "spawn_diversity", "closed_loop_rule_consistency")}
        bar.write(f"step {step}: {json.dumps(summary)} "
                  f"by event {json.dumps(metrics['board_accuracy_nonspawn_by_event'])}")
        return metrics

    while step < cfg.steps:
        idx = torch.multinomial(sampling, cfg.batch_size, replacement=True, generator=rng)
        x, e, y = X[idx], E[idx], Y[idx]
        noise = posterior_noise(S[idx], rng)
        for group in opt_g.param_groups:
            group["lr"] = learning_rate(cfg, step) * group["scale"]

        # Discriminator: real (x, e, y) against the generator's (x, e, sigmoid(logits)).
        logits = gen(x, e, noise)
        fake = torch.sigmoid(logits)
        d_real, d_fake = disc(x, e, y), disc(x, e, fake.detach())
        loss_d = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                  + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

        # Generator: reconstruction + adversarial.
        loss_rec = reconstruction_loss(logits, x, y, cfg.changed_weight)
        d_gen = disc(x, e, fake)
        loss_adv = F.binary_cross_entropy_with_logits(d_gen, torch.ones_like(d_gen))
        loss_g = loss_rec + cfg.adv_weight * loss_adv
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        torch.nn.utils.clip_grad_norm_(gen.parameters(), 1.0)
        opt_g.step()
        if average is not None:
            update_average(average, gen, cfg.ema_decay)
        step += 1
        bar.update(1)

        if step % 50 == 0:
            writer.add_scalar("loss/reconstruction", loss_rec.item(), step)
            writer.add_scalar("loss/adversarial", loss_adv.item(), step)
            writer.add_scalar("loss/discriminator", loss_d.item(), step)
            writer.add_scalar("lr", learning_rate(cfg, step), step)
            bar.set_postfix(rec=f"{loss_rec.item():.5f}")
        evaluated, stop = pace.after_step(step, evaluate)
        metrics = evaluated or metrics
        if stop:
            break
    bar.close()
    writer.close()
    return {"step": step, **metrics}

