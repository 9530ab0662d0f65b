"""The shipped Tetris checkpoint: present, intact, described, and playable by the runtime."""
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
