"""The training side end to end on a tiny config: train, resume, export, parity, runtime."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from neuralplay.models.tetris_gan import (  # noqa: E402
    Discriminator, Generator, TetrisGANConfig, posterior_noise, sample_noise,
)
from neuralplay.training.tetris_data import CollectConfig, collect  # noqa: E402

TINY = TetrisGANConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, disc_d_model=16, disc_layers=1)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    collect(CollectConfig(out=str(out), train_steps=1200, test_steps=400, seed=4), show_progress=False)
    return out


def test_forward_shapes():
    gen, disc = Generator(TINY), Discriminator(TINY)
    board = torch.zeros(3, 2, 22, 10, dtype=torch.uint8)
    event = torch.tensor([0, 3, 5])
    logits = gen(board, event, sample_noise(3))
    assert logits.shape == (3, 2, 22, 10)
    assert disc(board, event, torch.sigmoid(logits)).shape == (3,)


def test_posterior_noise_makes_the_spawned_piece_the_argmax():
    spawn = torch.tensor([0, 6, -1, 3] * 50)
    g = posterior_noise(spawn, torch.Generator().manual_seed(0))
    has = spawn >= 0
    assert torch.equal(g[has].argmax(dim=1), spawn[has])


@pytest.fixture(scope="module")
def run_dir(data_dir, tmp_path_factory):
    from neuralplay.training.tetris_train import TrainConfig, train

    run = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(data=str(data_dir), run_dir=str(run), steps=6, batch_size=16, eval_every=6,
                      ckpt_every=3, warmup=2, eval_examples=200, eval_closed_loop_steps=50, threads=1, model=TINY)
    result = train(cfg, show_progress=False)
    assert result["step"] == 6
    return run


def test_training_writes_checkpoint_logs_and_metrics_and_resumes(run_dir, data_dir):
    from neuralplay.training.tetris_train import TrainConfig, train

    assert (run_dir / "ckpt.pt").exists() and any((run_dir / "logs").iterdir())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0 <= metrics["cell_accuracy"] <= 1 and "board_accuracy_nonspawn_by_event" in metrics
    cfg = TrainConfig(data=str(data_dir), run_dir=str(run_dir), steps=8, batch_size=16, eval_every=100,
                      ckpt_every=100, warmup=2, eval_examples=200, eval_closed_loop_steps=50, threads=1, model=TINY)
    assert train(cfg, resume=True, show_progress=False)["step"] == 8


def test_export_matches_torch_and_the_runtime_plays_it(run_dir, data_dir, tmp_path):
    from neuralplay.games.tetris import TetrisGame
    from neuralplay.runtime.checkpoint import load_checkpoint
    from neuralplay.runtime.tetris import NeuralTetris
    from neuralplay.training.tetris_export import export

    onnx_path = tmp_path / "tiny.onnx"
    meta_path = export(run_dir, onnx_path, data_dir, closed_loop_steps=50)
    meta = json.loads(meta_path.read_text())
    assert meta["game"] == "tetris" and meta["onnx_parity_max_abs_diff"] < 1e-3
    assert set(meta["metrics"]) >= {"cell_accuracy", "spawn_diversity", "closed_loop_rule_consistency"}
    ckpt = load_checkpoint(meta_path, "tetris", "tetris-gan-generator", "tetris")
    model = NeuralTetris(ckpt, seed=0)
    board = model.reset(TetrisGame(seed=0).observation())
    for event in (1, 2, 3, 0, 5, 0):
        board = model.step(event)
        assert board.shape == (2, 22, 10) and board.dtype == np.uint8 and board.max() <= 1


def test_an_exported_generator_reads_back_into_torch_and_warm_starts_a_run(run_dir, data_dir, tmp_path):
    from neuralplay.training.tetris_export import export, generator_from_checkpoint
    from neuralplay.training.tetris_train import load_generator, warm_start

    meta_path = export(run_dir, tmp_path / "tiny.onnx", data_dir, closed_loop_steps=50)
    trained, _ = load_generator(run_dir)
    recovered, cfg = generator_from_checkpoint(meta_path)
    assert cfg["model"]["d_model"] == TINY.d_model
    for name, value in trained.state_dict().items():
        assert torch.equal(recovered.state_dict()[name], value), name

    fresh, disc = Generator(TINY), Discriminator(TINY)
    warm_start(fresh, disc, meta_path)  # from the checkpoint: the generator only
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), trained.state_dict().values()))
    fresh, disc = Generator(TINY), Discriminator(TINY)
    warm_start(fresh, disc, run_dir)  # from the run: both models
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), trained.state_dict().values()))


def test_warm_start_from_a_model_of_another_size_says_so(run_dir):
    from neuralplay.errors import UserError
    from neuralplay.training.tetris_train import warm_start

    bigger = TetrisGANConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, disc_d_model=16, disc_layers=1)
    with pytest.raises(UserError, match="another size"):
        warm_start(Generator(bigger), Discriminator(bigger), run_dir)


def test_focus_gives_an_event_its_share_of_each_batch(data_dir):
    from neuralplay.errors import UserError
    from neuralplay.games.tetris import EVENT_NAMES
    from neuralplay.training.tetris_data import load_training
    from neuralplay.training.tetris_train import example_weights, transition_kind

    data = load_training(data_dir)
    hard = (data.event == EVENT_NAMES.index("hard_drop")) & (data.spawn < 0)
    base = example_weights(data, True).numpy()
    focused = example_weights(data, True, "hard_drop", 0.4).numpy()
    assert focused.sum() == pytest.approx(1.0) and base.sum() == pytest.approx(1.0)
    assert focused[hard].sum() == pytest.approx(0.6 * base[hard].sum() + 0.4)
    kinds = transition_kind(data.x, data.y, data.spawn)[hard]
    extra = (focused - 0.6 * base)[hard]
    for kind in np.unique(kinds):  # the extra share is split equally over moves / locks / clears
        assert extra[kinds == kind].sum() == pytest.approx(0.4 / len(np.unique(kinds)))
    with pytest.raises(UserError, match="unknown event"):
        example_weights(data, True, "jump", 0.4)


def test_a_graph_exported_with_folded_weights_reads_back_too(run_dir, tmp_path):
    """The first shipped graph was exported with constant folding: its MatMul weights are
    transposed and renamed, and are read back in the order the model runs them."""
    from neuralplay.games.tetris import COLS, ROWS
    from neuralplay.runtime.checkpoint import write_metadata
    from neuralplay.training.tetris_export import generator_from_checkpoint
    from neuralplay.training.tetris_train import load_generator

    trained, cfg = load_generator(run_dir)
    path = tmp_path / "folded.onnx"
    torch.onnx.export(trained, (torch.zeros(2, 2, ROWS, COLS, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64),
                                sample_noise(2)), str(path), dynamo=False, opset_version=17,
                      input_names=["board", "event", "noise"], output_names=["logits"],
                      dynamic_axes={n: {0: "batch"} for n in ("board", "event", "noise", "logits")})
    write_metadata(path, {"game": "tetris", "model_kind": "tetris-gan-generator", "config": cfg})
    recovered, _ = generator_from_checkpoint(path)
    for name, value in trained.state_dict().items():
        assert torch.equal(recovered.state_dict()[name], value), name


def test_a_column_stream_added_to_a_warm_start_changes_nothing_at_first(run_dir):
    from dataclasses import replace

    from neuralplay.training.tetris_train import load_generator, warm_start

    trained, _ = load_generator(run_dir)
    wider = replace(TINY, columns=1)
    gen, disc = Generator(wider), Discriminator(wider)
    warm_start(gen, disc, run_dir)
    assert gen.columns is not None and len(gen.columns.blocks) == 1
    board = torch.randint(0, 2, (6, 2, 22, 10), dtype=torch.uint8)
    event, noise = torch.arange(6), sample_noise(6)
    with torch.no_grad():
        assert torch.equal(gen(board, event, noise), trained(board, event, noise))
    loss = gen(board, event, noise).square().mean()
    loss.backward()  # the rows' read of the columns learns from the first step
    assert gen.columns.read[0].proj.weight.grad.abs().sum() > 0


def test_a_column_stream_deepened_on_a_warm_start_keeps_its_layers_and_adds_fresh_ones(tmp_path):
    from dataclasses import replace

    from neuralplay.training import run_state
    from neuralplay.training.tetris_train import TrainConfig, fresh_parameters, warm_start

    shallow = replace(TINY, n_layers=2, columns=1)
    source, source_disc = Generator(shallow), Discriminator(shallow)
    for p in source.parameters():  # a source whose column reads are not zero, as after training
        torch.nn.init.normal_(p, std=0.1)
    run_state.save(tmp_path, {"generator": source, "discriminator": source_disc}, 0,
                   TrainConfig(data="-", run_dir=str(tmp_path), model=shallow))
    gen = Generator(replace(shallow, columns=2))
    warm_start(gen, Discriminator(gen.cfg), tmp_path)
    board = torch.randint(0, 2, (6, 2, 22, 10), dtype=torch.uint8)
    event, noise = torch.arange(6), sample_noise(6)
    with torch.no_grad():
        assert torch.equal(gen(board, event, noise), source(board, event, noise))
    fresh = fresh_parameters(gen, tmp_path)
    assert fresh and all(n.startswith(("columns.blocks.1.", "columns.read.1.")) for n in fresh)
    assert {n for n, _ in gen.named_parameters() if ".1." in n and n.startswith("columns.")} == fresh


def test_a_generator_that_reads_the_piece_from_the_noise_ignores_its_values(tmp_path):
    from dataclasses import replace

    from neuralplay.training.tetris_export import export_onnx, parity

    gen = Generator(replace(TINY, piece_from_noise=True)).eval()
    board = torch.randint(0, 2, (6, 2, 22, 10), dtype=torch.uint8)
    event = torch.arange(6)
    spawn = torch.tensor([0, 1, 2, 3, 4, 6])
    first, second = posterior_noise(spawn, torch.Generator().manual_seed(1)), posterior_noise(spawn)
    assert not torch.equal(first, second)
    with torch.no_grad():
        assert torch.equal(gen(board, event, first), gen(board, event, second))
        other = posterior_noise(torch.tensor([5, 5, 5, 5, 5, 5]))
        assert not torch.equal(gen(board, event, first), gen(board, event, other))
    export_onnx(gen, tmp_path / "g.onnx")
    assert parity(gen, tmp_path / "g.onnx", board.numpy(), event.numpy()) < 1e-4


def test_a_warm_started_run_resumes_after_its_source_is_gone(data_dir, tmp_path):
    import shutil
    from dataclasses import replace

    from neuralplay.training import run_state
    from neuralplay.training.tetris_train import TrainConfig, train

    shallow = replace(TINY, n_layers=2, columns=1)
    source = tmp_path / "source"
    source.mkdir()
    run_state.save(source, {"generator": Generator(shallow), "discriminator": Discriminator(shallow)}, 0,
                   TrainConfig(data="-", run_dir=str(source), model=shallow))
    run = tmp_path / "run"
    cfg = TrainConfig(data=str(data_dir), run_dir=str(run), steps=2, batch_size=8, eval_every=100, ckpt_every=100,
                      warmup=1, eval_examples=50, eval_closed_loop_steps=10, threads=1,
                      model=replace(shallow, columns=2), init_from=str(source), fresh_lr_scale=10.0)
    train(cfg, show_progress=False)
    assert json.loads((run / "config.json").read_text())["fresh_parameters"]
    shutil.rmtree(source)
    cfg = replace(cfg, steps=3, fresh_parameters=[], init_from=None)
    assert train(cfg, resume=True, show_progress=False)["step"] == 3
    assert json.loads((run / "config.json").read_text())["init_from"] == str(source)  # its lineage kept


def test_the_moving_average_moves_toward_the_weights_by_one_minus_the_decay():
    from neuralplay.training.tetris_train import update_average

    gen, average = Generator(TINY), Generator(TINY)
    for p in average.parameters():
        torch.nn.init.zeros_(p)
    update_average(average, gen, decay=0.75)
    for a, p in zip(average.parameters(), gen.parameters()):
        assert torch.allclose(a, 0.25 * p)


def test_a_run_with_an_average_exports_and_warm_starts_from_it_and_keeps_it_on_resume(data_dir, tmp_path):
    from neuralplay.training.tetris_train import TrainConfig, load_generator, train, warm_start

    run = tmp_path / "run"
    options = dict(data=str(data_dir), run_dir=str(run), batch_size=16, eval_every=100, ckpt_every=100,
                   warmup=2, eval_examples=200, eval_closed_loop_steps=50, threads=1, model=TINY)
    train(TrainConfig(steps=4, lr=1e-2, ema_decay=0.9, **options), show_progress=False)
    state = torch.load(run / "ckpt.pt", weights_only=True)
    raw, average = state["generator"], state["generator_ema"]
    assert any(not torch.equal(raw[k], average[k]) for k in raw)  # it lags the weights
    loaded, cfg = load_generator(run)
    assert cfg["ema_decay"] == 0.9
    assert all(torch.equal(v, average[k]) for k, v in loaded.state_dict().items())
    fresh = Generator(TINY)
    warm_start(fresh, Discriminator(TINY), run)
    assert all(torch.equal(v, average[k]) for k, v in fresh.state_dict().items())

    assert train(TrainConfig(steps=6, **options), resume=True, show_progress=False)["step"] == 6  # no decay given
    resumed = torch.load(run / "ckpt.pt", weights_only=True)
    assert json.loads((run / "config.json").read_text())["ema_decay"] == 0.9
    assert any(not torch.equal(resumed["generator_ema"][k], average[k]) for k in average)  # still averaging


def test_a_decay_outside_zero_to_one_is_a_one_line_error(data_dir, tmp_path):
    from neuralplay.errors import UserError
    from neuralplay.training.tetris_train import TrainConfig, train

    with pytest.raises(UserError, match="--ema-decay 1.0"):
        train(TrainConfig(data=str(data_dir), run_dir=str(tmp_path / "run"), steps=1, ema_decay=1.0,
                          threads=1, model=TINY), show_progress=False)
