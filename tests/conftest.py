import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny models: threads only add overhead

import pytest


@pytest.fixture(autouse=True)
def user_home(tmp_path, monkeypatch):
    """Every test gets its own user data folder."""
    monkeypatch.setenv("NEURALPLAY_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="session")
def tiny_skiing(tmp_path_factory):
    """A tiny Skiing stack, built once: collected data (1 + 1 episodes per policy of 64
    steps: room for a 60-step rollout after 3 frames of context), a tokenizer (a product
    quantiser of two codebooks of 8: 64 token values) and a dynamics model trained a step
    each, both exported. The shipped models (one codebook) are played by other tests."""
    pytest.importorskip("torch")
    pytest.importorskip("ale_py")
    from types import SimpleNamespace

    from neuralplay.models.st_transformer import STConfig
    from neuralplay.models.vqvae import VQVAEConfig
    from neuralplay.runtime.skiing import STARTS_FILE, save_starts
    from neuralplay.runtime.skiing_tokenizer import SkiingTokenizer
    from neuralplay.training import skiing_dynamics, skiing_tokenizer
    from neuralplay.training.skiing_data import SkiingCollectConfig, collect

    root = tmp_path_factory.mktemp("tiny-skiing")
    data = root / "data"
    collect(SkiingCollectConfig(out=str(data), episodes_per_policy=1, heldout_per_policy=1, max_steps=64),
            show_progress=False)
    tok_cfg = skiing_tokenizer.TokenizerTrainConfig(
        data=str(data), run_dir=str(root / "tok-run"), steps=1, batch_size=4, eval_every=1, ckpt_every=1,
        threads=1, model=VQVAEConfig(channels=(8, 8, 16), code_dim=8, codebook_size=8, groups=2))
    skiing_tokenizer.train(tok_cfg, show_progress=False)
    skiing_tokenizer.export(root / "tok-run", root / "tokenizer", data)
    dyn_cfg = skiing_dynamics.DynamicsTrainConfig(
        data=str(data), run_dir=str(root / "dyn-run"), tokenizer=str(root / "tokenizer"), steps=1, batch_size=2,
        eval_every=1, ckpt_every=1, threads=1, model=STConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32))
    skiing_dynamics.train(dyn_cfg, show_progress=False)
    model, cfg = skiing_dynamics.load_model(root / "dyn-run")
    dynamics = root / "dynamics"
    dynamics.mkdir()
    save_starts(dynamics / STARTS_FILE, skiing_dynamics.make_starts(2, model.cfg.context - 1, steps=5))
    meta = {"config": cfg, "tokenizer": SkiingTokenizer(root / "tokenizer").identity, "reward_per_step": -3.0}
    skiing_dynamics.export_graphs(model, dynamics, meta)
    return SimpleNamespace(data=data, tokenizer=root / "tokenizer", dynamics=dynamics, model=model)
