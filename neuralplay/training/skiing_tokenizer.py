"""Train, evaluate and export the Skiing tokenizer (VQ-VAE). Read top to bottom."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from neuralplay.games.skiing import PALETTE, SKIER, error_shares, psnr_db
from neuralplay.models.vqvae import FRAME, VQVAE, VQVAEConfig
from neuralplay.runtime.skiing_tokenizer import (
    DECODER_KIND, DECODER_NAME, ENCODER_KIND, ENCODER_NAME, GAME, token_codes,
)
from neuralplay.training import run_state
from neuralplay.training.loop import Pace, autocast, cosine_lr, resolve_precision
from neuralplay.training.skiing_data import load_frames


@dataclass
class TokenizerTrainConfig:
    data: str
    run_dir: str
    steps: int = 4000
    batch_size: int = 32
    lr: float = 1e-3
    warmup: int = 100
    eval_every: int = 500
    ckpt_every: int = 250
    max_minutes: float | None = None
    threads: int = 2
    precision: str = "auto"  # of the forward pass: bf16, fp32, or auto (bf16 where the CPU has it)
    seed: int = 0
    model: VQVAEConfig = field(default_factory=VQVAEConfig)
    skier_weight: float | None = None  # the model's loss weight of skier pixels, also on resume (None: keep)
    init_from: str | None = None  # an exported tokenizer's folder a new run starts from (its size, model.hud_band)
    codebook_size: int | None = None  # with init_from: this many codes, the codebook started afresh (None: the source's)


def codebook_use(tokens: np.ndarray, codebook_size: int, groups: int) -> tuple[float, float]:
    """The fraction of codes in use and the perplexity of their use, averaged over the groups
    of a product quantiser (a token numbers one code of each group, base `codebook_size`)."""
    usage, perplexity = [], []
    codes = token_codes(tokens.ravel().astype(np.int64), codebook_size, groups)
    for g in range(groups):
        counts = np.bincount(codes[:, g], minlength=codebook_size).astype(float)
        p = counts[counts > 0] / counts.sum()
        usage.append((counts > 0).mean())
        perplexity.append(np.exp(-(p * np.log(p)).sum()))
    return float(np.mean(usage)), float(np.mean(perplexity))


def reconstruction_metrics(pred: np.ndarray, true: np.ndarray, tokens: np.ndarray, codebook_size: int,
                           groups: int = 1) -> dict:
    skier = true == SKIER
    usage, perplexity = codebook_use(tokens, codebook_size, groups)
    return {
        "psnr_db": psnr_db(pred, true),
        "palette_pixel_accuracy": float((pred == true).mean()),
        "skier_pixel_accuracy": float((pred[skier] == SKIER).mean()) if skier.any() else None,
        "codebook_usage": float(usage),
        "codebook_perplexity": float(perplexity),
        "codebook_groups": groups,
        "tokens_per_frame": int(np.prod(tokens.shape[1:])),
        "resolution": list(FRAME),
        **error_shares(pred, true, tokens.shape[1]),
    }


HOW_TO_TRAIN = "train one with `neuralplay train skiing-tokenizer`"


def vqvae_config(stored: dict) -> VQVAEConfig:
    """A tokenizer config as a run's config.json or a checkpoint's metadata stores it."""
    return VQVAEConfig(**dict(stored, channels=tuple(stored["channels"])))


def saved_model_config(run_dir: Path) -> VQVAEConfig:
    return vqvae_config(run_state.config(run_dir, HOW_TO_TRAIN)["model"])


def model_from_checkpoint(folder: str | Path) -> VQVAE:
    """The torch tokenizer inside an exported checkpoint folder (the inverse of `export`): the
    graphs keep the parameters' names. The codebook's moving averages are not exported; they
    restart from the codes, each counted once, so a code the data no longer uses restarts
    after a few hundred steps, as a dead code does. Decoding random tokens in torch and
    through the decoder graph, then encoding those frames both ways, checks the weights."""
    import onnx
    from onnx import numpy_helper

    from neuralplay.errors import UserError
    from neuralplay.runtime.skiing_tokenizer import SkiingTokenizer

    graphs = SkiingTokenizer(folder)
    model = VQVAE(vqvae_config(graphs.encoder_ckpt.meta["config"]["model"]))
    weights = {init.name.removeprefix("model."): numpy_helper.to_array(init)
               for ckpt in (graphs.encoder_ckpt, graphs.decoder_ckpt)
               for init in onnx.load(str(ckpt.onnx_path)).graph.initializer}
    state = model.state_dict()
    exported = [name for name in state if not name.startswith("codebook.ema_")]
    fix = "start a new run without --init-from, or from another tokenizer's folder"
    if any(name not in weights or weights[name].shape != tuple(state[name].shape) for name in exported):
        raise UserError(f"{graphs.encoder_ckpt.onnx_path.parent} does not hold the weights of its stored config: {fix}")
    loaded = {name: torch.from_numpy(weights[name].copy()) for name in exported}
    loaded["codebook.ema_sum"] = loaded["codebook.codes"].clone()
    loaded["codebook.ema_count"] = torch.ones_like(state["codebook.ema_count"])
    model.load_state_dict(loaded)
    model.eval()
    tokens = np.random.default_rng(0).integers(0, model.codebook.vocabulary, (8, 14, 10))
    with torch.no_grad():
        frames = model.decode_indices(torch.from_numpy(tokens)).numpy()
        same = (frames == graphs.decode(tokens)).mean(), (model.encode(torch.from_numpy(frames)).numpy()
                                                         == graphs.encode(frames)).mean()
    if min(same) < 0.99:  # not 1: a vector halfway between two codes may snap either way
        raise UserError(f"weights read back from {graphs.encoder_ckpt.onnx_path.parent} disagree with its graphs: {fix}")
    return model


def warm_weights(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A source tokenizer's weights for a target that may differ from it in two ways. Where
    the target's encoder is local (a 1x1 kernel where the source has a wider one), the
    kernel's centre tap: what the pixel itself contributed. Where the target's codebook has
    another size, the target's own fresh codebook: its zero counts restart every code on the
    first batch's encoder outputs. Everything else is the source's as it is."""
    out = dict(source)
    for name, want in target.items():
        have = source[name]
        if have.shape == want.shape:
            continue
        if have.dim() == 4 and want.shape[2:] == (1, 1):
            h, w = have.shape[2:]
            out[name] = have[:, :, h // 2:h // 2 + 1, w // 2:w // 2 + 1].clone()
        elif name.startswith("codebook."):
            out[name] = want.clone()
    return out


def load_model(run_dir: Path) -> tuple[VQVAE, dict]:
    cfg = run_state.config(run_dir, HOW_TO_TRAIN)
    model = VQVAE(saved_model_config(run_dir))
    run_state.load(run_dir, {"model": model}, HOW_TO_TRAIN)
    return model.eval(), cfg


@torch.no_grad()
def evaluate_torch(model: VQVAE, frames: np.ndarray) -> dict:
    model.eval()
    preds, toks = [], []
    for i in range(0, len(frames), 64):
        batch = torch.from_numpy(frames[i:i + 64])
        logits, idx, _ = model(batch)
        preds.append(logits.argmax(1).numpy().astype(np.uint8))
        toks.append(idx.numpy())
    model.train()
    return reconstruction_metrics(np.concatenate(preds), frames, np.concatenate(toks), model.cfg.codebook_size,
                                  model.cfg.groups)


def train_step(model: VQVAE, opt: torch.optim.Optimizer, batch: torch.Tensor, precision: str) -> torch.Tensor:
    """One optimiser step on a batch of frames, the forward pass in `precision`; its loss."""
    with autocast(precision):
        _, _, loss = model(batch)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def train(cfg: TokenizerTrainConfig, resume: bool = False, show_progress: bool = True) -> dict:
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    from neuralplay.games.skiing import to_rgb

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    cfg.precision = resolve_precision(cfg.precision)
    rng = np.random.default_rng(cfg.seed)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    start = model_from_checkpoint(cfg.init_from) if cfg.init_from and not resume else None
    frames = load_frames(Path(cfg.data) / "train")
    heldout = load_frames(Path(cfg.data) / "heldout")
    heldout = heldout[np.linspace(0, len(heldout) - 1, min(512, len(heldout))).astype(int)]
    if resume and (run_dir / run_state.CONFIG).exists():  # a resumed run keeps its model and lineage
        saved = run_state.config(run_dir, HOW_TO_TRAIN)
        cfg.model = vqvae_config(saved["model"])
        run_state.keep_lineage(cfg, saved, ("init_from", "codebook_size"))
    if start is not None:  # a warm start takes its source's model; a HUD band, a local encoder or a codebook size may change
        cfg.model = replace(start.cfg, hud_band=cfg.model.hud_band or start.cfg.hud_band,
                            local_encoder=cfg.model.local_encoder or start.cfg.local_encoder,
                            codebook_size=cfg.codebook_size or start.cfg.codebook_size)
    if cfg.skier_weight is not None:  # a loss weight, not the architecture: it may change on resume
        cfg.model = replace(cfg.model, skier_weight=cfg.skier_weight)
    model = VQVAE(cfg.model)
    if start is not None:
        model.load_state_dict(warm_weights(start.state_dict(), model.state_dict()))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    parts = {"model": model, "opt": opt}
    step = run_state.load(run_dir, parts, "start without --resume") if resume else 0
    writer = SummaryWriter(str(run_dir / "logs"))
    metrics: dict = {}
    bar = tqdm(total=cfg.steps, initial=step, desc="train skiing-tokenizer", disable=not show_progress)
    pace = Pace(cfg, run_dir, parts, bar)

    def evaluate(step: int) -> dict:
        metrics = evaluate_torch(model, heldout)
        for key in ("psnr_db", "palette_pixel_accuracy", "skier_pixel_accuracy", "codebook_usage",
                    "codebook_perplexity"):
            if metrics[key] is not None:
                writer.add_scalar(f"heldout/{key}", metrics[key], step)
        with torch.no_grad():
            model.eval()
            logits, _, _ = model(torch.from_numpy(heldout[:4]))
            model.train()
        pairs = [np.concatenate([to_rgb(t), to_rgb(p)], axis=1)
                 for t, p in zip(heldout[:4], logits.argmax(1).numpy())]
        writer.add_image("reconstructions (true | decoded)", np.concatenate(pairs, axis=0), step,
                         dataformats="HWC")
        bar.write(f"step {step}: {json.dumps(metrics)}")
        return metrics

    while step < cfg.steps:
        batch = torch.from_numpy(frames[rng.integers(0, len(frames), cfg.batch_size)])
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, cfg.steps, cfg.lr, cfg.warmup)
        loss = train_step(model, opt, batch, cfg.precision)
        step += 1
        bar.update(1)
        if step % 50 == 0:
            writer.add_scalar("loss", loss.item(), step)
        evaluated, stop = pace.after_step(step, evaluate)
        metrics = evaluated or metrics
        if stop:
            break
    bar.close()
    writer.close()
    return {"step": step, **metrics}


class GraphOf(torch.nn.Module):
    """One method of a model as a module's forward, which is what torch.onnx.export takes."""

    def __init__(self, model: torch.nn.Module, method: str):
        super().__init__()
        self.model, self.method = model, method

    def forward(self, *inputs: torch.Tensor):
        return getattr(self.model, self.method)(*inputs)


def export(run_dir: Path, out_dir: Path, data_dir: Path) -> list[Path]:
    """Encoder and decoder ONNX graphs with metadata; the metrics measured by onnxruntime."""
    from neuralplay import __version__
    from neuralplay.runtime.checkpoint import write_metadata

    model, cfg = load_model(run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = torch.zeros(2, *FRAME, dtype=torch.uint8)
    tokens = model.encode(frames)
    enc_path, dec_path = out_dir / f"{ENCODER_NAME}.onnx", out_dir / f"{DECODER_NAME}.onnx"
    batch = {0: "batch"}
    torch.onnx.export(GraphOf(model, "encode"), (frames,), str(enc_path), dynamo=False, opset_version=17,
                      input_names=["frames"], output_names=["tokens"],
                      dynamic_axes={"frames": batch, "tokens": batch})
    torch.onnx.export(GraphOf(model, "decode_indices"), (tokens,), str(dec_path), dynamo=False, opset_version=17,
                      input_names=["tokens"], output_names=["frames"],
                      dynamic_axes={"tokens": batch, "frames": batch})
    common = {"game": GAME, "neuralplay_version": __version__, "config": cfg,
              "resolution": list(FRAME), "palette": PALETTE.tolist(),
              "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "tokens": {"grid": list(tokens.shape[1:]), "codebook_size": model.codebook.vocabulary,
                         "groups": model.cfg.groups, "codes_per_group": model.cfg.codebook_size}}
    enc_io = {"inputs": {"frames": "uint8 (B, 105, 80) palette indices"}, "outputs": {"tokens": "int64 (B, 14, 10)"}}
    dec_io = {"inputs": {"tokens": "int64 (B, 14, 10)"}, "outputs": {"frames": "uint8 (B, 105, 80) palette indices"}}
    # Metadata first (the runtime checks it on load), then the metrics measured through it.
    write_metadata(enc_path, {**common, "model_kind": ENCODER_KIND, **enc_io})
    write_metadata(dec_path, {**common, "model_kind": DECODER_KIND, **dec_io})
    from neuralplay.runtime.skiing_tokenizer import SkiingTokenizer
    from neuralplay.training.skiing_tokenizer_eval import evaluate_tokenizer

    common["metrics"] = evaluate_tokenizer(SkiingTokenizer(out_dir, threads=2), data_dir / "heldout")
    return [write_metadata(enc_path, {**common, "model_kind": ENCODER_KIND, **enc_io}),
            write_metadata(dec_path, {**common, "model_kind": DECODER_KIND, **dec_io})]
