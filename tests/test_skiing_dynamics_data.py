"""The dynamics model's training clips: which tokens show the skier, and the clips that carry it."""
import pytest

pytest.importorskip("torch")

import numpy as np  # noqa: E402

from neuralplay.games.skiing import FLAG, HUD_ROWS, SKIER  # noqa: E402
from neuralplay.runtime.skiing import UNKNOWN_COLUMN  # noqa: E402
from neuralplay.training.skiing_dynamics import (  # noqa: E402
    hud_tokens, open_loop_context, sample_clips, skier_tokens, stale_tokens,
)


def test_skier_tokens_are_the_patches_with_a_skier_pixel():
    frames = np.zeros((3, 105, 80), np.uint8)
    frames[0, 9, 17] = SKIER  # patch row 1, column 2
    frames[0, 104, 79] = SKIER  # the last row of the frame: the bottom patch row, padded with snow
    frames[1, 40:48, 0:8] = FLAG  # another colour is not the skier
    marked = skier_tokens(frames)
    assert marked.shape == (3, 140)
    assert np.flatnonzero(marked[0]).tolist() == [1 * 10 + 2, 13 * 10 + 9]
    assert not marked[1:].any()


def test_a_clip_marks_the_skier_where_it_is_and_where_it_was():
    steps, n = 6, 4
    skier = np.zeros((steps, n), bool)
    for t in range(steps):
        skier[t, t % n] = True  # the skier moves one token a frame
    columns = np.arange(steps, dtype=np.float32) * 2
    columns[4] = np.nan  # no skier in frame 4
    episode = {"tokens": np.arange(steps * n).reshape(steps, n), "actions": np.arange(steps - 1) % 3,
               "skier": skier, "columns": columns, "recent": np.arange(steps, dtype=np.float32) / 10}
    clips = sample_clips([episode], 20, 3, 3, np.random.default_rng(0))
    assert clips.skier.shape == (20, 3, n) and clips.columns.shape == clips.recent.shape == (20, 3)
    for clip, marks, cols, recent in zip(clips.tokens.numpy(), clips.skier.numpy(), clips.columns.numpy(),
                                         clips.recent.numpy()):
        for frame, mark, col, rec in zip(clip[:, 0] // n, marks, cols, recent):  # each frame's index in the episode
            assert np.flatnonzero(mark).tolist() == sorted({frame % n, max(frame - 1, 0) % n})
            assert col == (UNKNOWN_COLUMN if frame == 4 else 2 * frame) and rec == np.float32(frame / 10)


def test_hud_tokens_are_the_rows_that_hold_the_hud():
    marked = hud_tokens((14, 10)).reshape(14, 10)
    rows_with_hud = [r for r in range(14) if marked[r].all()]
    assert rows_with_hud == [r for r in range(14) if r * 8 < HUD_ROWS] == [0, 1]
    assert marked.sum() == 2 * 10


def test_stale_tokens_keep_some_past_tokens_and_never_touch_the_first_or_predicted_frame():
    import torch

    tokens = torch.arange(4 * 6 * 50).reshape(4, 6, 50)  # every token differs from every other
    assert torch.equal(stale_tokens(tokens, 0.0, torch.Generator().manual_seed(0)), tokens)
    shown = stale_tokens(tokens, 0.9, torch.Generator().manual_seed(0))
    assert torch.equal(shown[:, 0], tokens[:, 0]) and torch.equal(shown[:, -1], tokens[:, -1])
    stale = shown[:, 1:-1] != tokens[:, 1:-1]
    assert 0 < stale.float().mean() < 0.9
    assert torch.equal(shown[:, 1:-1][stale], shown[:, :-2][stale])  # a stale token is the one shown before
    assert (shown[:, 2:-1] == tokens[:, :-3]).any()  # and a miss can last two frames


@pytest.mark.parametrize("real", [1, 3])
def test_open_loop_context_is_the_model_playing_on_from_the_real_frames(real):
    import torch

    from neuralplay.models.st_transformer import STConfig, STTransformer

    cfg = STConfig(codebook_size=16, groups=2, grid=(3, 2), context=6, d_model=16, n_layers=2, n_heads=2, d_ff=32)
    torch.manual_seed(0)
    model = STTransformer(cfg).eval()
    tokens, actions = torch.randint(0, 16, (2, 6, 6)), torch.randint(0, 3, (2, 6))
    shown = open_loop_context(model, tokens, actions, real)
    assert torch.equal(shown[:, :real], tokens[:, :real]) and torch.equal(shown[:, -1], tokens[:, -1])
    assert not torch.equal(shown[:, real:-1], tokens[:, real:-1])
    with torch.no_grad():
        for f in range(real, 5):  # each guess: the full forward's most likely codes after the frames shown
            past_and_masked = torch.cat([shown[:, :f], torch.full((2, 1, 6), cfg.mask_id)], dim=1)
            logits = model(past_and_masked, actions[:, :f + 1])[:, f].reshape(2, 6, 2, 4)
            codes = logits.argmax(-1)
            assert torch.equal(shown[:, f], codes[..., 0] * 4 + codes[..., 1])

    from neuralplay.runtime.skiing import Vocabulary

    kept = open_loop_context(model, tokens, actions, real, Vocabulary(np.array([5, 10]), codes_per_group=4, groups=2))
    assert set(kept[:, real:-1].unique().tolist()) <= {5, 10}  # decoded as the runtime decodes an export
