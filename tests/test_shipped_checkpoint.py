"""The shipped checkpoints (Tetris; the Skiing tokenizer and dynamics): present, intact, described, and playable by the runtime."""
from neuralplay.games.tetris import TetrisGame
from neuralplay.runtime.checkpoint import load_checkpoint
from neuralplay.runtime.tetris import DEFAULT_CHECKPOINT, GAME, MODEL_KIND, NeuralTetris


def test_shipped_checkpoint_is_intact_and_carries_its_facts():
    ckpt = load_checkpoint(None, GAME, MODEL_KIND, DEFAULT_CHECKPOINT)  # checks the graph's hash
    meta = ckpt.meta
    assert meta["observation"]["shape"] == [2, 22, 10]
    assert meta["training_data"]["sets"]["train"]["transitions"] > 0
    for key in ("cell_accuracy", "board_accuracy", "board_plausibility", "spawn_recall", "spawn_precision",
                "spawn_validity", "spawn_diversity", "closed_loop_rule_consistency"):
        assert 0 <= meta["metrics"][key] <= 1, key
    assert meta["onnx_parity_max_abs_diff"] < 1e-3


def test_shipped_model_plays_a_piece_down():
    model = NeuralTetris(None, seed=0)
    board = model.reset(TetrisGame(seed=0).observation())
    for _ in range(5):
        board = model.step(0)  # gravity
    assert board.shape == (2, 22, 10) and board[1].sum() > 0


def test_shipped_skiing_models_are_intact_and_play():
    import numpy as np

    from neuralplay.runtime.skiing import NeuralSkiing, load_starts

    model = NeuralSkiing(None, None, seed=0)  # the shipped graphs, hashes and tokenizer checked
    metrics = model.step_ckpt.meta["metrics"]
    for key in ("teacher_forced_psnr_db", "rollout_psnr_db_15", "rollout_psnr_db_60", "skier_persistence",
                "token_accuracy"):
        assert metrics[key] is not None, key
    assert model.tokenizer.encoder_ckpt.meta["metrics"]["tokens_per_frame"] <= 160
    start = load_starts(None)[0]
    assert model.skier_state is not None and len(start.frames) == model.frames_read  # the tables ship beside it
    frame = model.reset(start.frames, start.actions_into_frames())
    assert model.anchor is not None  # the skier's state was read off the start's frames
    for action in (0, 1, 2):
        frame = model.step(action)
    assert frame.shape == (105, 80) and frame.dtype == np.uint8
