import json

import numpy as np

from neuralplay.training.tetris_data import (
    CollectConfig, collect, hard_drops, is_spawn, landings, load, rebalance, simulate,
)


def test_collect_writes_three_sets_that_load_back(tmp_path):
    summary = collect(CollectConfig(out=str(tmp_path), train_steps=800, test_steps=400, seed=1),
                      show_progress=False)
    for name in ("train", "test_train", "test_play"):
        data = load(tmp_path / f"{name}.npz")
        assert len(data) == summary["sets"][name]["transitions"] > 0
        assert data.x.shape[1:] == (2, 22, 10) and data.x.max() <= 1
    facts = json.loads((tmp_path / "summary.json").read_text())
    assert facts["sets"]["train"]["transitions"] == 880  # 800 played + 10% landings


def test_spawns_carry_their_piece_and_match_the_definition():
    data = simulate("player", 2000, seed=2)
    spawn = is_spawn(data.x, data.y)
    assert spawn.any()
    assert np.array_equal(spawn, data.spawn >= 0)


def test_landings_follow_the_rules_and_lock():
    from neuralplay.games.tetris import Event
    from neuralplay.games.tetris_agent import follows_rules
    from neuralplay.training.tetris_train import transition_kind

    extra = landings(simulate("mix", 2000, seed=4), 300, seed=0)
    assert len(extra) == 300 and (extra.spawn == -1).all()
    assert set(extra.event.tolist()) == {Event.NONE, Event.SOFT_DROP, Event.HARD_DROP}
    assert all(follows_rules(x, e, y) for x, e, y in zip(extra.x, extra.event, extra.y))
    kind = transition_kind(extra.x, extra.y, extra.spawn)
    assert set(kind.tolist()) <= {1, 2} and (kind == 2).any()  # every one locks, some clear lines


def test_hard_drops_bring_new_pieces_to_the_stacks_by_the_rules():
    from neuralplay.games.tetris import PIECES, Event, split_observation
    from neuralplay.games.tetris_agent import follows_rules, piece_of
    from neuralplay.training.tetris_train import transition_kind

    played = simulate("player", 1500, seed=5)
    extra = hard_drops(played, 400, seed=0)
    assert len(extra) == 400 and (extra.event == Event.HARD_DROP).all() and (extra.spawn == -1).all()
    assert all(follows_rules(x, e, y) for x, e, y in zip(extra.x, extra.event, extra.y))
    kind = transition_kind(extra.x, extra.y, extra.spawn)
    assert set(kind.tolist()) <= {1, 2} and (kind == 2).any()  # every one locks, some clear lines
    stacks = {x[0].tobytes() for x in played.x}
    assert all(x[0].tobytes() in stacks for x in extra.x)  # the stacks are the played ones
    assert {piece_of(split_observation(x)[1]) for x in extra.x} == set(PIECES)
    assert np.array_equal(hard_drops(played, 50, seed=3).x, hard_drops(played, 50, seed=3).x)


def test_collect_adds_hard_drops_when_asked(tmp_path):
    summary = collect(CollectConfig(out=str(tmp_path), train_steps=800, test_steps=400, seed=1,
                                    hard_drop_fraction=0.25), show_progress=False)
    assert summary["sets"]["train"]["transitions"] == 1100  # 800 + 10% landings + 25% of 880
    plain = tmp_path / "plain"
    collect(CollectConfig(out=str(plain), train_steps=800, test_steps=400, seed=1), show_progress=False)
    for name in ("test_train", "test_play"):  # the test sets do not change
        assert np.array_equal(load(tmp_path / f"{name}.npz").x, load(plain / f"{name}.npz").x)


def test_balanced_sampling_gives_rare_kinds_their_share():
    import pytest

    pytest.importorskip("torch")
    from neuralplay.training.tetris_train import example_weights, transition_kind

    data = simulate("player", 3000, seed=5)
    w = example_weights(data, balance=True).numpy()
    kind = transition_kind(data.x, data.y, data.spawn)
    assert abs(w.sum() - 1) < 1e-9
    assert w[kind == 3].sum() > 0.1 and w[kind == 1].sum() > (kind == 1).mean()


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
