"""The Skiing data and tokenizer pipeline on a tiny config: collect, train, resume, export, parity."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ale_py")

from neuralplay.models.vqvae import VQVAE, VQVAEConfig, one_hot_frames  # noqa: E402
from neuralplay.training.skiing_data import SkiingCollectConfig, collect, load_frames  # noqa: E402

TINY = VQVAEConfig(channels=(8, 8, 16), code_dim=8, codebook_size=32)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("skiing")
    collect(SkiingCollectConfig(out=str(out), episodes_per_policy=1, heldout_per_policy=1, max_steps=40),
            show_progress=False)
    return out


def test_collect_keeps_heldout_episodes_apart(data_dir):
    train, heldout = load_frames(data_dir / "train"), load_frames(data_dir / "heldout")
    assert train.shape[1:] == (105, 80) and train.dtype == np.uint8
    assert len(train) == len(heldout) == 3 * 41
    summary = json.loads((data_dir / "summary.json").read_text())
    assert set(summary["splits"]["train"]) == {"held-random", "gates", "crash"}


def test_vqvae_shapes_and_codebook_restart():
    model = VQVAE(TINY)
    frames = torch.randint(0, 10, (4, 105, 80), dtype=torch.uint8)
    logits, idx, loss = model(frames)
    assert logits.shape == (4, 10, 105, 80) and idx.shape == (4, 14, 10) and loss.item() > 0
    model.codebook.ema_count.zero_()  # every code "dead": unused ones restart on encoder outputs
    before = model.codebook.codes.clone()
    model(frames)
    assert (model.codebook.ema_count >= 1e-2).all()
    assert not torch.equal(before, model.codebook.codes)


def test_a_product_quantiser_numbers_tokens_by_its_groups_codes():
    from dataclasses import replace

    torch.manual_seed(0)
    cfg = replace(TINY, groups=2, codebook_size=6)
    model = VQVAE(cfg)
    assert model.codebook.vocabulary == 36 and model.codebook.codes.shape == (2, 6, 4)
    frames = torch.randint(0, 10, (4, 105, 80), dtype=torch.uint8)
    model(frames)  # first batch: every code restarts on an encoder output
    assert (model.codebook.ema_count >= 1e-2).all()
    model.eval()
    z = model.encoder(one_hot_frames(frames, cfg.n_colours))
    q, tokens = model.codebook(z)
    parts = z.permute(0, 2, 3, 1).reshape(-1, 2, 4)
    dist = [torch.cdist(parts[:, g], model.codebook.codes[g]).sort(1) for g in range(2)]
    nearest = torch.stack([d.indices[:, 0] for d in dist], 1)
    clear = torch.stack([d.values[:, 1] - d.values[:, 0] > 1e-4 for d in dist], 1).all(1)  # no near-ties
    assert clear.float().mean() > 0.5
    assert torch.equal(tokens.reshape(-1)[clear], (nearest[:, 0] * 6 + nearest[:, 1])[clear])
    chosen = model.codebook.split(tokens).reshape(-1, 2)
    assert torch.equal(chosen[clear], nearest[clear])
    codes = torch.cat([model.codebook.codes[0][chosen[:, 0]], model.codebook.codes[1][chosen[:, 1]]], 1)
    assert torch.allclose(q.permute(0, 2, 3, 1).reshape(-1, 8), codes)


def test_under_bf16_autocast_the_codebook_still_quantises_in_fp32():
    from neuralplay.training.loop import autocast

    torch.manual_seed(0)
    model = VQVAE(TINY).eval()
    z = torch.randn(2, TINY.code_dim, 14, 10).bfloat16()
    with autocast("bf16"):
        q, tokens = model.codebook(z)
    q_ref, tokens_ref = model.codebook(z.float())
    assert q.dtype == torch.float32
    assert torch.equal(tokens, tokens_ref) and torch.equal(q, q_ref)


@pytest.mark.parametrize("groups, precision", [(1, "fp32"), (2, "bf16")])
def test_train_resume_export_and_onnx_parity(data_dir, tmp_path, groups, precision):
    from dataclasses import replace

    from neuralplay.runtime.skiing_tokenizer import SkiingTokenizer
    from neuralplay.training.skiing_tokenizer import TokenizerTrainConfig, export, load_model, train

    run = tmp_path / "run"
    model_cfg = replace(TINY, groups=groups)
    cfg = TokenizerTrainConfig(data=str(data_dir), run_dir=str(run), steps=3, batch_size=4, eval_every=3,
                               ckpt_every=3, threads=1, precision=precision, model=model_cfg)
    assert train(cfg, show_progress=False)["step"] == 3
    assert json.loads((run / "config.json").read_text())["precision"] == precision
    cfg.steps, cfg.skier_weight = 4, 40.0  # a loss weight may change on resume; the rest comes from the run
    assert train(cfg, resume=True, show_progress=False)["step"] == 4
    assert json.loads((run / "config.json").read_text())["model"]["skier_weight"] == 40.0
    export(run, tmp_path / "ckpt", data_dir)
    tokenizer = SkiingTokenizer(tmp_path / "ckpt")
    metrics = tokenizer.encoder_ckpt.meta["metrics"]
    for key in ("psnr_db", "palette_pixel_accuracy", "skier_pixel_accuracy", "codebook_usage",
                "tokens_per_frame", "resolution", "decode_ms_p50"):
        assert key in metrics
    assert metrics["tokens_per_frame"] == 140 and metrics["codebook_groups"] == groups
    assert tokenizer.codebook_size == TINY.codebook_size ** groups
    model, _ = load_model(run)
    frames = load_frames(data_dir / "heldout")[:8]

    with torch.no_grad():
        ref_tokens = model.encode(torch.from_numpy(frames)).numpy()
        z = model.encoder(one_hot_frames(torch.from_numpy(frames), TINY.n_colours))
        parts = z.permute(0, 2, 3, 1).reshape(-1, groups, TINY.code_dim // groups)
        margins = []
        for g in range(groups):
            dist = torch.cdist(parts[:, g], model.codebook.codes[g]).sort(dim=1).values
            margins.append(dist[:, 1] - dist[:, 0])
        clear = (torch.stack(margins, 1).min(1).values > 1e-3).reshape(ref_tokens.shape).numpy()  # no near-ties
        ref_frames = model.decode(torch.from_numpy(ref_tokens)).argmax(1).numpy()
    tokens = tokenizer.encode(frames)
    assert clear.mean() > 0.1
    assert np.array_equal(tokens[clear], ref_tokens[clear])
    assert (tokenizer.decode(ref_tokens) == ref_frames).mean() > 0.999


def test_a_skiing_checkpoint_given_to_tetris_is_refused(tmp_path):
    from neuralplay.errors import UserError
    from neuralplay.runtime.checkpoint import write_metadata
    from neuralplay.runtime.tetris import NeuralTetris

    graph = tmp_path / "ski.onnx"
    graph.write_bytes(b"not really a graph")
    meta = write_metadata(graph, {"game": "skiing", "model_kind": "skiing-vqvae-decoder"})
    with pytest.raises(UserError, match="skiing"):
        NeuralTetris(str(meta))


def test_a_tetris_checkpoint_given_to_the_skiing_tokenizer_is_refused(tmp_path):
    from pathlib import Path

    from neuralplay.errors import UserError
    from neuralplay.runtime.skiing_tokenizer import SkiingTokenizer

    shipped = Path(__file__).resolve().parents[1] / "checkpoints"
    for suffix in (".onnx", ".json"):
        (tmp_path / f"skiing_tokenizer_encoder{suffix}").write_bytes((shipped / f"tetris{suffix}").read_bytes())
    meta = tmp_path / "skiing_tokenizer_encoder.json"
    meta.write_text(meta.read_text().replace('"onnx_file": "tetris.onnx"', '"onnx_file": "skiing_tokenizer_encoder.onnx"'))
    with pytest.raises(UserError, match="tetris"):
        SkiingTokenizer(tmp_path)


def test_recorded_real_skiing_becomes_tokenizer_training_data(tmp_path):
    import pygame

    from neuralplay.app.skiing import SkiingSession
    from neuralplay.recording.writer import Recorder
    from neuralplay.training.skiing_data import collect_recordings
    from neuralplay.training.skiing_tokenizer import TokenizerTrainConfig, train

    rec_dir, data_dir = tmp_path / "recs", tmp_path / "data"
    recorder = Recorder(rec_dir / "run.nprec", "skiing", "real", ["real"], None)
    session = SkiingSession("real", 0, pygame, autopilot=True, recorder=recorder)
    for _ in range(120):  # two seconds of play: 30 steps
        session.update(1 / 60, [], set())
    recorder.close()
    facts = collect_recordings(rec_dir, data_dir)
    assert facts == {"recordings": 1, "steps": 30}
    frames = load_frames(data_dir / "train")
    assert frames.shape == (31, 105, 80)
    (data_dir / "heldout").mkdir()
    (data_dir / "heldout" / "h.npz").write_bytes(next((data_dir / "train").glob("*.npz")).read_bytes())
    cfg = TokenizerTrainConfig(data=str(data_dir), run_dir=str(tmp_path / "run"), steps=1, batch_size=4,
                               eval_every=1, ckpt_every=1, threads=1, model=TINY)
    assert train(cfg, show_progress=False)["step"] == 1


def test_dynamics_trains_on_tokenized_episodes(data_dir, tmp_path):
    from neuralplay.models.st_transformer import STConfig
    from neuralplay.training.skiing_dynamics import DynamicsTrainConfig, load_model, train as train_dynamics
    from neuralplay.training.skiing_tokenizer import TokenizerTrainConfig, export, train

    tok_cfg = TokenizerTrainConfig(data=str(data_dir), run_dir=str(tmp_path / "tok"), steps=1, batch_size=4,
                                   eval_every=1, ckpt_every=1, threads=1, model=TINY)
    train(tok_cfg, show_progress=False)
    export(tmp_path / "tok", tmp_path / "tokenizer", data_dir)
    cfg = DynamicsTrainConfig(data=str(data_dir), run_dir=str(tmp_path / "dyn"), tokenizer=str(tmp_path / "tokenizer"),
                              steps=2, batch_size=2, eval_every=2, ckpt_every=2, threads=1,
                              model=STConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32))
    result = train_dynamics(cfg, show_progress=False)
    assert result["step"] == 2 and 0 <= result["heldout_masked_token_accuracy"] <= 1
    assert any((data_dir / "tokens").glob("*/train/*.npz"))  # tokenized once, cached per tokenizer
    model, saved = load_model(tmp_path / "dyn")
    assert saved["model"]["codebook_size"] == TINY.codebook_size


def test_dynamics_warm_start_takes_a_longer_context_and_resume_keeps_it_with_a_new_loss_weight(data_dir, tmp_path):
    from neuralplay.models.st_transformer import STConfig
    from neuralplay.training import run_state
    from neuralplay.training.skiing_dynamics import DynamicsTrainConfig, load_model, train as train_dynamics
    from neuralplay.training.skiing_tokenizer import TokenizerTrainConfig, export, train

    train(TokenizerTrainConfig(data=str(data_dir), run_dir=str(tmp_path / "tok"), steps=1, batch_size=4,
                               eval_every=1, ckpt_every=1, threads=1, model=TINY), show_progress=False)
    export(tmp_path / "tok", tmp_path / "tokenizer", data_dir)

    def run(name: str, steps: int, context: int, d_model: int = 16, init_from: str | None = None,
            change_weight: float | None = None):
        cfg = DynamicsTrainConfig(data=str(data_dir), run_dir=str(tmp_path / name), tokenizer=str(tmp_path / "tokenizer"),
                                  steps=steps, batch_size=2, eval_every=steps, ckpt_every=steps, threads=1,
                                  init_from=init_from, change_weight=change_weight, context=context,
                                  model=STConfig(d_model=d_model, n_layers=1, n_heads=2, d_ff=32))
        return train_dynamics(cfg, resume=(tmp_path / name).exists(), show_progress=False)

    run("short", 2, context=4)
    source, _ = load_model(tmp_path / "short")
    run("long", 1, context=6, d_model=32, init_from=str(tmp_path / "short"))  # the size comes from the source
    model, saved = load_model(tmp_path / "long")
    assert saved["model"]["context"] == 6 and saved["model"]["d_model"] == 16
    for name, weights in model.state_dict().items():  # one warm-up step (lr ~ 1e-6) from the source's weights
        torch.testing.assert_close(weights, source.state_dict()[name], atol=1e-4, rtol=0)

    run("long", 2, context=4, change_weight=3.0)  # resumed: the run keeps its context, takes the new loss weight
    saved = run_state.config(tmp_path / "long", "")
    assert saved["model"]["context"] == 6 and saved["model"]["change_weight"] == 3.0
    assert saved["init_from"] == str(tmp_path / "short")  # and says where it started from


class HudLeakingTokenizer:
    """A stand-in encoder whose third row of tokens reads the HUD, as a real encoder's wide
    receptive field can: its codes change when only the timer does."""

    def encode(self, frames):
        tokens = np.zeros((len(frames), 14, 10), np.int64)
        tokens[:, 2] = frames[:, 0, :10]
        tokens[:, 6] = frames[:, 50, :10]  # the slope's own row (pixel row 50 is in token row 6)
        return tokens


class PatchSumTokenizer:
    """A stand-in encoder that sees only each token's own 8x8 patch."""

    def encode(self, frames):
        padded = np.zeros((len(frames), 112, 80), np.int64)
        padded[:, :105] = frames
        return padded.reshape(len(frames), 14, 8, 10, 8).sum(axis=(2, 4))


def test_code_changes_count_the_codes_that_change_where_their_patch_stands(tmp_path):
    from neuralplay.training.skiing_data import save_episode
    from neuralplay.training.skiing_tokenizer_eval import code_changes

    frames = np.zeros((4, 105, 80), np.uint8)
    frames[1, 0, :10] = 1  # 0 -> 1: only the HUD changes (still)
    frames[2, 0, :10] = 1  # 1 -> 2: nothing changes (still)
    frames[3, 0, :10] = 1
    frames[3, 50, :10] = 2  # 2 -> 3: the slope moves (not still)
    save_episode(tmp_path / "held-random-0.npz", {"frames": frames, "actions": np.zeros(3, np.int64),
                                                   "rewards": np.zeros(3)}, "held-random", 0)
    result = code_changes(HudLeakingTokenizer(), tmp_path)
    assert result["still_pairs"] == 2
    assert result["still_code_change_by_token_row"][2] == 0.5  # changed in one of the two still pairs
    assert sum(result["still_code_change_by_token_row"]) == 0.5  # the slope's row moved only when not still
    # 3 pairs: 10 codes of row 2 and 2 patches change in the first, 10 codes of row 6 and 2 patches in the last
    assert result["codes_changed_per_frame"] == round(20 / 3, 2) and result["patches_changed_per_frame"] == 1.33
    # of the 3 * 140 - 4 patches that stand, all of row 2's first 10 change code, and 8 of row 6's
    assert result["code_change_on_unchanged_patches"] == round(18 / 416, 4)
    local = code_changes(PatchSumTokenizer(), tmp_path)
    assert local["code_change_on_unchanged_patches"] == 0 and local["codes_changed_per_frame"] == 1.33


def test_with_a_hud_band_the_hud_does_not_reach_the_slopes_codes():
    from dataclasses import replace

    torch.manual_seed(0)
    frames = torch.zeros(2, 105, 80, dtype=torch.uint8)
    frames[1, 2:12, 30:50] = 1  # only the HUD (the top 14 rows) differs
    for band in (0, 2):
        model = VQVAE(replace(TINY, hud_band=band)).eval()
        with torch.no_grad():
            z = model.latents(one_hot_frames(frames, TINY.n_colours))
            logits = model.logits(z)
        assert z.shape == (2, TINY.code_dim, 14, 10) and logits.shape == (2, TINY.n_colours, 112, 80)
        slope_same = torch.equal(z[0, :, 2:], z[1, :, 2:])  # the rows of tokens below the HUD's two
        assert slope_same == (band == 2)  # one frame: the encoder reaches across; a band: it cannot


def test_a_tokenizer_run_starts_from_an_exported_tokenizer_with_the_hud_apart(data_dir, tmp_path):
    from neuralplay.training.skiing_tokenizer import (
        TokenizerTrainConfig, export, load_model, model_from_checkpoint, train,
    )
    from tests.test_cli import neuralplay

    source = TokenizerTrainConfig(data=str(data_dir), run_dir=str(tmp_path / "source"), steps=2, batch_size=4,
                                  eval_every=2, ckpt_every=2, threads=1, precision="fp32", model=TINY)
    train(source, show_progress=False)
    export(tmp_path / "source", tmp_path / "exported", data_dir)
    trained, _ = load_model(tmp_path / "source")
    read_back = model_from_checkpoint(tmp_path / "exported")
    for name, value in read_back.state_dict().items():
        if not name.startswith("codebook.ema_"):  # the moving averages are not exported
            torch.testing.assert_close(value, trained.state_dict()[name], rtol=0, atol=0)
    run = tmp_path / "run"
    result = neuralplay("train", "skiing-tokenizer", "--data", str(data_dir), "--run", str(run), "--init-from",
                        str(tmp_path / "exported"), "--hud-apart", "--steps", "1", "--batch-size", "4",
                        "--threads", "1", "--precision", "fp32")
    assert result.returncode == 0, result.stderr
    model = json.loads((run / "config.json").read_text())["model"]
    assert model["hud_band"] == 2 and model["channels"] == list(TINY.channels)
    local = tmp_path / "local"
    result = neuralplay("train", "skiing-tokenizer", "--data", str(data_dir), "--run", str(local), "--init-from",
                        str(tmp_path / "exported"), "--local-encoder", "--codebook-size", "64", "--steps", "1",
                        "--batch-size", "4", "--threads", "1", "--precision", "fp32")
    assert result.returncode == 0, result.stderr
    local_model, cfg = load_model(local)
    assert cfg["model"]["local_encoder"] is True and cfg["model"]["codebook_size"] == 64
    assert local_model.state_dict()["encoder.net.1.net.1.weight"].shape[2:] == (1, 1)
    assert local_model.codebook.codes.shape[1] == 64
    result = neuralplay("train", "skiing-tokenizer", "--data", str(data_dir), "--run", str(local), "--resume",
                        "--steps", "2", "--batch-size", "4", "--threads", "1", "--precision", "fp32")
    assert result.returncode == 0, result.stderr
    resumed = json.loads((local / "config.json").read_text())  # a resume keeps where the run started from
    assert resumed["init_from"] == str(tmp_path / "exported") and resumed["codebook_size"] == 64


def test_a_local_encoder_starts_from_the_centres_of_a_wider_encoders_kernels():
    from dataclasses import replace

    from neuralplay.training.skiing_tokenizer import warm_weights

    wide, local = VQVAE(TINY), VQVAE(replace(TINY, local_encoder=True))
    local.load_state_dict(warm_weights(wide.state_dict(), local.state_dict()))
    kernel = wide.state_dict()["encoder.net.1.net.1.weight"]
    assert kernel.shape[2:] == (3, 3)
    torch.testing.assert_close(local.state_dict()["encoder.net.1.net.1.weight"], kernel[:, :, 1:2, 1:2])
    for name in ("decoder.net.0.weight", "encoder.net.0.weight", "codebook.codes"):  # the rest as it was
        torch.testing.assert_close(local.state_dict()[name], wide.state_dict()[name])


def test_a_warm_start_with_a_larger_codebook_keeps_the_weights_and_restarts_the_codes():
    from dataclasses import replace

    from neuralplay.training.skiing_tokenizer import warm_weights

    torch.manual_seed(0)
    source, larger = VQVAE(TINY), VQVAE(replace(TINY, codebook_size=64))
    larger.load_state_dict(warm_weights(source.state_dict(), larger.state_dict()))
    torch.testing.assert_close(larger.state_dict()["decoder.net.0.weight"], source.state_dict()["decoder.net.0.weight"])
    assert larger.codebook.codes.shape == (1, 64, TINY.code_dim) and not larger.codebook.ema_count.any()
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, TINY.n_colours, (4, 105, 80), dtype=np.uint8))
    larger.train()
    larger(frames)  # the first batch restarts every code on the encoder's outputs
    outputs = larger.latents(one_hot_frames(frames, TINY.n_colours)).permute(0, 2, 3, 1).reshape(-1, TINY.code_dim)
    nearest = torch.cdist(larger.codebook.codes[0], outputs.detach()).min(dim=1).values
    assert nearest.max() < 0.1


def test_a_local_encoders_code_changes_only_with_its_own_patch():
    from dataclasses import replace

    torch.manual_seed(0)
    frames = torch.zeros(2, 105, 80, dtype=torch.uint8)
    frames[1, 43, 36] = 7  # one pixel of the patch at token row 5, column 4
    for local in (False, True):
        model = VQVAE(replace(TINY, local_encoder=local)).eval()
        with torch.no_grad():
            z = model.latents(one_hot_frames(frames, TINY.n_colours))
        changed = (z[0] != z[1]).any(dim=0)
        assert changed[5, 4]
        assert (changed.sum().item() == 1) == local  # 3x3 kernels carry it to the neighbours' codes
