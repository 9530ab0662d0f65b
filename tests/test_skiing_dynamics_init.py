"""A Skiing dynamics run warm-started from an exported checkpoint folder (the shipped model
can be fine-tuned without its run folder) or grown deeper, and the every-frame objective
from the CLI."""
import json
import shutil

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ale_py")

from neuralplay.errors import UserError  # noqa: E402
from neuralplay.models.st_transformer import STTransformer  # noqa: E402
from neuralplay.training.skiing_dynamics import load_model, model_from_checkpoint, warm_start  # noqa: E402
from tests.test_cli import neuralplay, one_line_error  # noqa: E402


def test_the_weights_read_back_from_the_graphs_are_the_trained_ones(tiny_skiing):
    model = model_from_checkpoint(tiny_skiing.dynamics)
    assert model.cfg == tiny_skiing.model.cfg
    trained = tiny_skiing.model.state_dict()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, trained[name], rtol=0, atol=0)


def test_a_checkpoint_whose_config_does_not_fit_its_graph_is_refused(tiny_skiing, tmp_path):
    folder = tmp_path / "dynamics"
    shutil.copytree(tiny_skiing.dynamics, folder)
    meta_path = folder / "skiing_dynamics_step.json"
    meta = json.loads(meta_path.read_text())
    meta["model"]["n_layers"] += 1  # the metadata is not hashed with the graph
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(UserError, match="does not hold the weights of its stored config"):
        model_from_checkpoint(folder)


def test_train_from_a_checkpoint_folder_on_every_frame(tiny_skiing, tmp_path):
    run = tmp_path / "run"
    result = neuralplay("train", "skiing-dynamics", "--data", str(tiny_skiing.data), "--run", str(run),
                        "--tokenizer", str(tiny_skiing.tokenizer), "--init-from", str(tiny_skiing.dynamics),
                        "--context", "3", "--every-frame", "--steps", "2", "--batch-size", "2", "--threads", "1")
    assert result.returncode == 0, result.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["every_frame"] and config["init_from"] == str(tiny_skiing.dynamics)
    model, _ = load_model(run)
    assert model.cfg.context == 3 and model.cfg.d_model == tiny_skiing.model.cfg.d_model
    again = tmp_path / "again"  # without --context, a warm start keeps its source's
    result = neuralplay("train", "skiing-dynamics", "--data", str(tiny_skiing.data), "--run", str(again),
                        "--tokenizer", str(tiny_skiing.tokenizer), "--init-from", str(run), "--steps", "1",
                        "--batch-size", "2", "--threads", "1")
    assert result.returncode == 0, result.stderr
    assert load_model(again)[0].cfg.context == 3


def test_init_from_a_folder_without_a_model_is_one_line(tiny_skiing, tmp_path):
    one_line_error(neuralplay("train", "skiing-dynamics", "--data", str(tiny_skiing.data), "--run", str(tmp_path / "r"),
                              "--tokenizer", str(tiny_skiing.tokenizer), "--init-from", str(tmp_path)),
                   str(tmp_path), "train skiing-dynamics")


def test_a_deeper_warm_start_begins_as_its_source(tiny_skiing):
    from dataclasses import replace

    source = tiny_skiing.model
    deeper = STTransformer(replace(source.cfg, n_layers=source.cfg.n_layers + 2))
    warm_start(deeper, tiny_skiing.dynamics)
    tokens = torch.randint(0, source.cfg.codebook_size + 1, (2, source.cfg.context, source.cfg.tokens))
    actions = torch.randint(0, source.cfg.n_actions + 1, (2, source.cfg.context))
    with torch.no_grad():
        torch.testing.assert_close(deeper.eval()(tokens, actions), source.eval()(tokens, actions))
    grown = deeper.blocks[-1]
    assert not grown.ff[0].weight.eq(0).all()  # only each branch's last layer starts at zero
    loss, _ = deeper.train().loss(tokens.clamp(max=source.cfg.codebook_size - 1), actions)
    loss.backward()
    assert grown.ff[-1].weight.grad.abs().sum() > 0  # and the new layers learn


def test_a_warm_start_onto_a_larger_codebook_keeps_the_layers_between_embedding_and_head(tiny_skiing):
    from dataclasses import replace

    source = tiny_skiing.model
    larger = STTransformer(replace(source.cfg, codebook_size=(2 * source.cfg.codes_per_group) ** source.cfg.groups))
    fresh_head = larger.head.weight.clone()
    warm_start(larger, tiny_skiing.dynamics)
    assert larger.head.weight.shape[0] == 2 * source.head.weight.shape[0]
    torch.testing.assert_close(larger.head.weight, fresh_head)
    for name, value in source.state_dict().items():
        if not name.startswith(("token.", "head.")):
            torch.testing.assert_close(larger.state_dict()[name], value, rtol=0, atol=0)
