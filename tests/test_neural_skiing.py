"""Neural Skiing on a tiny stack: the runtime against torch, the bounded cache, the gymnasium
env, the app session (neural and compare, with re-sync), the bench and the CLI's errors."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("ale_py")

import gymnasium as gym  # noqa: E402
import pygame  # noqa: E402

from neuralplay.app.skiing import SkiingSession  # noqa: E402
from neuralplay.games.skiing import DIFF_COLOUR, difference_image, psnr_db  # noqa: E402
from neuralplay.errors import UserError  # noqa: E402
from neuralplay.runtime.skiing import NeuralSkiing, Sampling, load_starts  # noqa: E402
from tests.test_cli import neuralplay, one_line_error  # noqa: E402


@pytest.fixture(scope="module")
def neural(tiny_skiing):
    return NeuralSkiing(tiny_skiing.dynamics, tiny_skiing.tokenizer, seed=0)


def test_onnx_step_matches_torch_and_the_cache_stays_bounded(tiny_skiing, neural):
    start = load_starts(tiny_skiing.dynamics)[0]
    neural.reset(start.frames, start.actions_into_frames())
    model = tiny_skiing.model
    tokens = torch.from_numpy(neural.tokenizer.encode(start.frames).reshape(len(start.frames), -1))
    led = torch.tensor([[model.cfg.n_actions, *start.actions_into_frames()]])
    with torch.no_grad():
        cache = model.prefill(tokens[None], led)
        logits, _ = model.step(tokens[-1:], torch.tensor([1]), cache)
    np.testing.assert_allclose(neural.cache, cache.numpy(), atol=1e-4)
    onnx_logits = neural._run({"tokens": tokens[-1:].numpy(), "action": np.array([1]), "cache": neural.cache})[0][0]
    np.testing.assert_allclose(onnx_logits, logits[0].numpy(), atol=1e-4)
    shape = neural.cache.shape
    for action in [0, 1, 2] * 5:
        frame = neural.step(action)
    assert frame.shape == (105, 80) and frame.dtype == np.uint8 and frame.max() < 10
    assert neural.cache.shape == shape  # context - 1 frames, however long it runs


def test_maskgit_is_seeded_and_fills_every_token(tiny_skiing):
    def run(seed):
        model = NeuralSkiing(tiny_skiing.dynamics, tiny_skiing.tokenizer, seed=seed,
                             sampling=Sampling(steps=3, temperature=1.0))
        start = load_starts(tiny_skiing.dynamics)[1]
        model.reset(start.frames[-1:])  # one frame: padded to the context
        return np.stack([model.step(a) for a in (0, 2, 1)]), model.tokens, model.mask_id
    frames, tokens, mask_id = run(3)
    assert np.array_equal(frames, run(3)[0])
    assert mask_id == 64 and (tokens < mask_id).all()  # 64 token values (8 x 8), no mask left


def test_dynamics_of_another_tokenizer_is_refused(tiny_skiing, tmp_path):
    import shutil

    other = tmp_path / "dynamics"
    shutil.copytree(tiny_skiing.dynamics, other)
    meta_path = other / "skiing_dynamics_step.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "tokenizer": ["skiing_tokenizer_encoder@000000000000"]}))
    with pytest.raises(UserError, match="trained on tokenizer"):
        NeuralSkiing(other, tiny_skiing.tokenizer)


def test_the_checkpoint_says_how_many_maskgit_passes_a_frame_takes(tiny_skiing, tmp_path):
    import shutil

    folder = tmp_path / "dynamics"
    shutil.copytree(tiny_skiing.dynamics, folder)
    meta_path = folder / "skiing_dynamics_step.json"
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "maskgit_steps": 1}))
    start = load_starts(folder)[0]

    def forwards_a_frame(model: NeuralSkiing) -> int:
        calls, run = [], model._run
        model._run = lambda *a: calls.append(1) or run(*a)
        model.reset(start.frames, start.actions_into_frames())
        model.step(0)
        return len(calls)

    assert forwards_a_frame(NeuralSkiing(folder, tiny_skiing.tokenizer)) == 1 + 1  # its pass, then the cache's
    assert forwards_a_frame(NeuralSkiing(folder, tiny_skiing.tokenizer, sampling=Sampling(steps=3))) == 3 + 1
    assert NeuralSkiing(tiny_skiing.dynamics, tiny_skiing.tokenizer).sampling.steps == 3  # none recorded: 3
    drawn = NeuralSkiing(folder, tiny_skiing.tokenizer, sampling=Sampling(steps=None, temperature=1.0))
    assert forwards_a_frame(drawn) == 1 + 1 and drawn.sampling.temperature == 1.0  # its passes, drawn codes


def test_export_records_the_maskgit_passes_and_measures_with_them(tiny_skiing, tmp_path):
    import shutil

    from neuralplay.training.skiing_dynamics import export

    export(tiny_skiing.dynamics.parent / "dyn-run", tmp_path / "out", tiny_skiing.data, str(tiny_skiing.tokenizer),
           starts=2, sampling=Sampling(steps=1))
    meta = json.loads((tmp_path / "out" / "skiing_dynamics_step.json").read_text())
    assert meta["maskgit_steps"] == 1 and "teacher_forced_psnr_db" in meta["metrics"]
    model = NeuralSkiing(tmp_path / "out", tiny_skiing.tokenizer)
    assert model.sampling.steps == 1

    # The vocabulary: each row's tokens the tokenizer gives the training frames, and what the model plays keeps to it.
    from neuralplay.training.skiing_data import load_episode

    rows, width = model.grid
    train_tokens = np.concatenate([model.tokenizer.encode(load_episode(p)["frames"]).reshape(-1, rows, width)
                                   for p in sorted((tiny_skiing.data / "train").glob("*.npz"))])
    by_row = meta["token_vocabulary_by_row"]
    assert by_row == [np.unique(train_tokens[:, r]).tolist() for r in range(rows)]
    assert "token_vocabulary_by_row" not in json.loads((tmp_path / "out" / "skiing_dynamics_prefill.json").read_text())
    start = load_starts(tmp_path / "out")[0]
    step_json = tmp_path / "out" / "skiing_dynamics_step.json"
    tight = [row[:1] for row in by_row]  # one token a row: each row must be drawn with its own
    for vocabulary in (by_row, tight):
        step_json.write_text(json.dumps({**meta, "token_vocabulary_by_row": vocabulary}))
        model = NeuralSkiing(tmp_path / "out", tiny_skiing.tokenizer)
        model.reset(start.frames, start.actions_into_frames())
        for action in (0, 1, 2, 1):
            model.step(action)
            grid = model.tokens.reshape(rows, width)
            assert all(np.isin(grid[r], vocabulary[r]).all() for r in range(rows))
    flat = sorted({t for row in by_row for t in row})[:2]  # older exports: one vocabulary for every row
    older = {k: v for k, v in meta.items() if k != "token_vocabulary_by_row"}
    step_json.write_text(json.dumps({**older, "token_vocabulary": flat}))
    model = NeuralSkiing(tmp_path / "out", tiny_skiing.tokenizer)
    model.reset(start.frames, start.actions_into_frames())
    model.step(1)
    assert np.isin(model.tokens, flat).all()
    for bad in ({**older, "token_vocabulary": [0, 64]},  # 64: past the tokenizer's 8 x 8
                {**meta, "token_vocabulary_by_row": by_row[:-1]}):  # a row short
        step_json.write_text(json.dumps(bad))
        with pytest.raises(UserError, match="token_vocabulary does not fit the tokenizer"):
            NeuralSkiing(tmp_path / "out", tiny_skiing.tokenizer)

    result = neuralplay("export", "skiing-dynamics", "--run", str(tiny_skiing.dynamics.parent / "dyn-run"),
                        "--data", str(tiny_skiing.data), "--tokenizer", str(tiny_skiing.tokenizer),
                        "--out", str(tmp_path / "cli"), "--maskgit-steps", "2", "--any-token")
    assert result.returncode == 0, result.stderr
    meta = json.loads((tmp_path / "cli" / "skiing_dynamics_step.json").read_text())
    assert meta["maskgit_steps"] == 2 and "token_vocabulary_by_row" not in meta
    assert NeuralSkiing(tmp_path / "cli", tiny_skiing.tokenizer).vocabulary is None
    no_training = tmp_path / "held-out-only"
    shutil.copytree(tiny_skiing.data / "heldout", no_training / "heldout")
    one_line_error(neuralplay("export", "skiing-dynamics", "--run", str(tiny_skiing.dynamics.parent / "dyn-run"),
                              "--data", str(no_training), "--tokenizer", str(tiny_skiing.tokenizer),
                              "--out", str(tmp_path / "none")), "no training episodes", "--any-token")


def test_env_has_ale_spaces_and_starts_from_given_frames(tiny_skiing):
    import ale_py

    gym.register_envs(ale_py)
    ale = gym.make("ALE/Skiing-v5", repeat_action_probability=0.0)
    env = gym.make("neuralplay/NeuralSkiing-v0", checkpoint=str(tiny_skiing.dynamics),
                   tokenizer=str(tiny_skiing.tokenizer), render_mode="rgb_array")
    assert env.observation_space == ale.observation_space and env.action_space == ale.action_space
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    frames = [ale.reset(seed=0)[0]] + [ale.step(a)[0] for a in (1, 1)]
    obs, _ = env.reset(options={"frames": np.stack(frames), "actions": [1, 1]})
    assert np.array_equal(obs[::2, ::2], frames[-1][::2, ::2])  # the given frame, at the model's resolution
    obs, reward, terminated, truncated, _ = env.step(2)
    assert env.observation_space.contains(obs) and reward == -3.0 and not terminated
    assert env.render().shape == (210, 160, 3)


@pytest.mark.parametrize("engine", ["neural", "compare"])
def test_session_plays_and_compare_resyncs(tiny_skiing, neural, engine):
    starts = load_starts(tiny_skiing.dynamics)
    session = SkiingSession(engine, 0, pygame, neural, starts, autopilot=True)
    for _ in range(30):
        session.update(1 / 15, [], set())
    assert session.steps == 30
    panes = session.panes()
    assert [p.title for p in panes] == (["Neural"] if engine == "neural" else ["Real", "Neural"])
    assert panes[-1].image.shape == (210, 160, 3)
    if engine == "compare":
        assert panes[-1].preview.shape == (210, 160, 3) and "PSNR" in panes[-1].lines[0]
        assert session.resync()
        assert np.array_equal(session.neural, session.recent[-1])  # the model now shows ALE's frame


def test_psnr_and_difference_image():
    a = np.zeros((105, 80), np.uint8)
    b = a.copy()
    b[10, 10] = 7
    assert psnr_db(a, a) == 60.0 and psnr_db(a, b) < 60.0
    diff = difference_image(b, a)
    assert tuple(diff[10, 10]) == tuple(DIFF_COLOUR) and tuple(diff[0, 0]) != tuple(DIFF_COLOUR)


def test_bench_and_play_from_the_command_line(tiny_skiing):
    folders = ["--checkpoint", str(tiny_skiing.dynamics), "--tokenizer", str(tiny_skiing.tokenizer)]
    result = neuralplay("bench", "skiing", "--json", "--steps", "40", "--maskgit-steps", "2", *folders)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    for key in ("neural_steps_per_s", "real_steps_per_s", "neural_ms_p50", "neural_ms_p99", "startup_s",
                "threads", "rss_mb_start", "rss_mb_end"):
        assert facts[key] > 0, key
    assert facts["maskgit_steps"] == 2 and facts["temperature"] == 0 and facts["skier_box"] is None  # no tables
    assert facts["slope_scroll"] is False  # nor a downhill motion to scroll by
    result = neuralplay("play", "skiing", "--compare", "--autopilot", "--max-steps", "10", "--speed", "8", *folders)
    assert result.returncode == 0, result.stderr
    result = neuralplay("eval", "skiing", "--json", "--data", str(tiny_skiing.data), "--temperature", "0.5", *folders)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    for key in ("teacher_forced_psnr_db", "rollout_psnr_db_15", "rollout_psnr_db_60", "skier_persistence",
                "token_accuracy"):
        assert key in facts
    assert facts["maskgit_steps"] == 3 and facts["temperature"] == 0.5  # the checkpoint's passes (none recorded: 3)
    one_line_error(neuralplay("bench", "skiing", "--maskgit-steps", "0", *folders), "--maskgit-steps 0", "1 MaskGIT")
    one_line_error(neuralplay("eval", "skiing", "--temperature", "-1", *folders), "--temperature -1.0", "or more")


def test_missing_skiing_checkpoint_is_one_line(tmp_path):
    one_line_error(neuralplay("play", "skiing", "--checkpoint", str(tmp_path)), "not found",
                   "neuralplay export skiing-dynamics")
