import json

import numpy as np

from neuralplay.training.tetris_data import (
    CollectConfig, collect, is_spawn, load, rebalance, simulate,
)


def test_collect_writes_three_sets_that_load_back(tmp_path):
    summary = collect(CollectConfig(out=str(tmp_path), train_steps=800, test_steps=400, seed=1),
                      show_progress=False)
    for name in ("train", "test_train", "test_play"):
        data = load(tmp_path / f"{name}.npz")
        assert len(data) == summary["sets"][name]["transitions"] > 0
        assert data.x.shape[1:] == (2, 22, 10) and data.x.max() <= 1
    facts = json.loads((tmp_path / "summary.json").read_text())
    assert facts["sets"]["train"]["transitions"] == 800


def test_spawns_carry_their_piece_and_match_the_definition():
    data = simulate("player", 2000, seed=2)
    spawn = is_spawn(data.x, data.y)
    assert spawn.any()
    assert np.array_equal(spawn, data.spawn >= 0)


def test_rebalance_reaches_the_asked_spawn_fraction():
    data = simulate("random", 3000, seed=3)
    mixed = rebalance(data, 0.2, seed=0)
    assert len(mixed) == len(data)
    assert abs(is_spawn(mixed.x, mixed.y).mean() - 0.2) < 0.01


def test_a_corrupt_data_file_is_one_clear_error(tmp_path):
    import pytest

    from neuralplay.errors import UserError

    bad = tmp_path / "train.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="collect"):
        load(bad)
