"""The Skiing dynamics model on a tiny config: training loss, and the cached one-frame path
giving what the full forward gives."""
import pytest

torch = pytest.importorskip("torch")

from dataclasses import replace  # noqa: E402

import numpy as np  # noqa: E402

from neuralplay.models.st_transformer import STConfig, STTransformer, group_codes  # noqa: E402
from neuralplay.runtime.skiing import Sampling, maskgit, maskgit_schedule  # noqa: E402

TINY = STConfig(codebook_size=16, grid=(3, 2), context=4, d_model=16, n_layers=2, n_heads=2, d_ff=32)
GROUPED = replace(TINY, groups=2)  # 16 token values: two codebooks of 4


@pytest.mark.parametrize("every_frame", [False, True], ids=["last frame", "every frame"])
@pytest.mark.parametrize("cfg", [TINY, GROUPED], ids=["one codebook", "two codebooks"])
def test_loss_trains_down_on_a_learnable_clip(cfg, every_frame):
    torch.manual_seed(0)
    model = STTransformer(cfg)
    tokens = torch.randint(0, 16, (8, 1, 6)).repeat(1, 4, 1)  # each frame repeats the one before: learnable
    actions = torch.randint(0, 3, (8, 4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss, _ = model.loss(tokens, actions, torch.Generator().manual_seed(1), every_frame=every_frame)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 2


def test_change_weight_counts_the_tokens_that_change_more():
    import torch.nn.functional as F

    cfg = replace(GROUPED, change_weight=5.0)
    torch.manual_seed(0)
    model = STTransformer(cfg)
    tokens, actions = torch.randint(0, 16, (8, 4, 6)), torch.randint(0, 3, (8, 4))
    tokens[:, -1, :3] = tokens[:, -2, :3]  # half of the last frame repeats the frame before
    loss, _ = model.loss(tokens, actions, torch.Generator().manual_seed(1))

    masked = model.mask_frames(8, torch.Generator().manual_seed(1))  # the same draw as the loss's
    inp = tokens.clone()
    inp[:, -1][masked] = cfg.mask_id
    logits = model(inp, actions)[:, -1].reshape(8, 6, cfg.groups, cfg.codes_per_group)
    per_token = F.cross_entropy(logits.permute(0, 3, 1, 2), group_codes(tokens[:, -1], cfg),
                                reduction="none").mean(-1)
    weight = torch.where(tokens[:, -1] != tokens[:, -2], 5.0, 1.0)
    expected = (per_token * weight)[masked].sum() / weight[masked].sum()
    torch.testing.assert_close(loss, expected)
    assert not torch.isclose(expected, per_token[masked].mean())  # the weighting matters on this clip


def test_the_loss_reads_the_context_given_and_scores_against_the_real_tokens():
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = STTransformer(TINY)
    tokens, actions = torch.randint(0, 16, (8, 4, 6)), torch.randint(0, 3, (8, 4))
    shown = tokens.clone()
    shown[:, 1:3] = tokens[:, :1]  # the middle frames stalled on the first
    loss, _ = model.loss(tokens, actions, torch.Generator().manual_seed(1), context=shown)

    masked = model.mask_frames(8, torch.Generator().manual_seed(1))
    inp = shown.clone()
    inp[:, -1][masked] = TINY.mask_id
    logits = model(inp, actions)[:, -1]
    torch.testing.assert_close(loss, F.cross_entropy(logits[masked], tokens[:, -1][masked]))
    assert not torch.isclose(loss, model.loss(tokens, actions, torch.Generator().manual_seed(1))[0])

    for every_frame in (False, True):  # a frame being predicted shows its real tokens, whatever the context says
        last_differs = tokens.clone()
        last_differs[:, -1] = (tokens[:, -1] + 1) % 16
        own = model.loss(tokens, actions, torch.Generator().manual_seed(1), every_frame=every_frame)[0]
        given = model.loss(tokens, actions, torch.Generator().manual_seed(1), every_frame=every_frame,
                           context=last_differs)[0]
        torch.testing.assert_close(given, own)


def test_with_a_context_the_changing_tokens_are_those_that_differ_from_the_frame_read_before():
    torch.manual_seed(0)
    model = STTransformer(replace(TINY, change_weight=5.0))
    tokens, actions = torch.randint(0, 16, (8, 4, 6)), torch.randint(0, 3, (8, 4))
    tokens[:, -1] = tokens[:, -2]  # the real last frame repeats the one before: nothing changes...
    shown = tokens.clone()
    shown[:, -2] = (tokens[:, -2] + 1) % 16  # ...but the context read it wrong: every token must catch up
    _, stats = model.loss(tokens, actions, torch.Generator().manual_seed(1), context=shown)
    assert "changed_token_accuracy" in stats
    _, stats = model.loss(tokens, actions, torch.Generator().manual_seed(1))
    assert "changed_token_accuracy" not in stats


def test_region_weights_multiply_the_weight_of_their_tokens():
    import torch.nn.functional as F

    cfg = replace(GROUPED, change_weight=2.0, skier_weight=7.0, hud_weight=3.0)
    torch.manual_seed(0)
    model = STTransformer(cfg)
    tokens, actions = torch.randint(0, 16, (8, 4, 6)), torch.randint(0, 3, (8, 4))
    tokens[:, -1, :3] = tokens[:, -2, :3]
    skier = torch.zeros(8, 4, 6, dtype=torch.bool)  # regions mark tokens of every frame of the clip
    skier[:, -1, 2:4] = True  # one repeated and one changed token show the skier
    hud = torch.zeros(8, 4, 6, dtype=torch.bool)
    hud[:, :, :2] = True  # the HUD's overlaps neither the skier's nor the changed tokens
    loss, stats = model.loss(tokens, actions, torch.Generator().manual_seed(1), {"skier": skier, "hud": hud})
    skier, hud = skier[:, -1], hud[:, -1]  # the last frame's, the one predicted
    plain, plain_stats = model.loss(tokens, actions, torch.Generator().manual_seed(1))

    masked = model.mask_frames(8, torch.Generator().manual_seed(1))
    inp = tokens.clone()
    inp[:, -1][masked] = cfg.mask_id
    logits = model(inp, actions)[:, -1].reshape(8, 6, cfg.groups, cfg.codes_per_group)
    per_token = F.cross_entropy(logits.permute(0, 3, 1, 2), group_codes(tokens[:, -1], cfg),
                                reduction="none").mean(-1)
    weight = (torch.where(tokens[:, -1] != tokens[:, -2], 2.0, 1.0) * torch.where(skier, 7.0, 1.0)
              * torch.where(hud, 3.0, 1.0))
    expected = (per_token * weight)[masked].sum() / weight[masked].sum()
    torch.testing.assert_close(loss, expected)
    assert not torch.isclose(loss, plain)
    right = (logits.argmax(-1) == group_codes(tokens[:, -1], cfg)).all(-1)
    for name, region in (("skier", skier), ("hud", hud)):
        torch.testing.assert_close(stats[f"{name}_token_accuracy"], right[masked & region].float().mean())
    changed = tokens[:, -1] != tokens[:, -2]
    torch.testing.assert_close(stats["changed_token_accuracy"], right[masked & changed].float().mean())
    assert set(plain_stats) == {"masked_token_accuracy", "changed_token_accuracy"}
    assert stats["masked_token_accuracy"] == plain_stats["masked_token_accuracy"]


def test_every_frame_is_predicted_as_the_cached_step_predicts_it():
    torch.manual_seed(0)
    model = STTransformer(GROUPED).eval()
    tokens, actions = torch.randint(0, 16, (2, 4, 6)), torch.randint(0, 4, (2, 4))
    masked = tokens.masked_fill(torch.rand(2, 4, 6) < 0.5, GROUPED.mask_id)
    with torch.no_grad():
        every = model.logits(model.every_frame_states(tokens, masked, actions)[1])
        for t in (1, 2, 3):  # frame t from the clean frames before it and its own unmasked tokens
            cache = model.prefill(tokens[:, :t], actions[:, :t])
            torch.testing.assert_close(every[:, t], model.step(masked[:, t], actions[:, t], cache)[0],
                                       atol=1e-5, rtol=1e-5)
        assert not torch.allclose(every[:, 3], model(masked, actions)[:, 3], atol=1e-3)  # not a masked past


def test_the_every_frame_loss_covers_every_frame_after_the_first():
    import torch.nn.functional as F

    cfg = replace(GROUPED, change_weight=3.0)
    torch.manual_seed(0)
    model = STTransformer(cfg)
    tokens, actions = torch.randint(0, 16, (8, 4, 6)), torch.randint(0, 3, (8, 4))
    tokens[:, 2, :3] = tokens[:, 1, :3]  # some tokens repeat the frame before
    loss, stats = model.loss(tokens, actions, torch.Generator().manual_seed(1), every_frame=True)

    masked = torch.zeros(8, 4, 6, dtype=torch.bool)
    masked[:, 1:] = model.mask_frames(8 * 3, torch.Generator().manual_seed(1)).reshape(8, 3, 6)
    logits = model.logits(model.every_frame_states(tokens, tokens.masked_fill(masked, cfg.mask_id), actions)[1])
    logits = logits.reshape(8, 4, 6, cfg.groups, cfg.codes_per_group)
    per_token = F.cross_entropy(logits.permute(0, 4, 1, 2, 3), group_codes(tokens, cfg), reduction="none").mean(-1)
    weight = torch.ones(8, 4, 6)
    weight[:, 1:] = torch.where(tokens[:, 1:] != tokens[:, :-1], 3.0, 1.0)
    torch.testing.assert_close(loss, (per_token * weight)[masked].sum() / weight[masked].sum())
    assert masked[:, 1:-1].any() and not masked[:, 0].any()  # earlier frames are predicted, the first is not
    right = (logits.argmax(-1) == group_codes(tokens, cfg)).all(-1)
    torch.testing.assert_close(stats["masked_token_accuracy"], right[masked].float().mean())


@pytest.mark.parametrize("cfg", [TINY, GROUPED], ids=["one codebook", "two codebooks"])
def test_cached_step_matches_the_full_forward(cfg):
    torch.manual_seed(0)
    model = STTransformer(cfg).eval()
    tokens = torch.randint(0, 17, (2, 4, 6))
    actions = torch.randint(0, 4, (2, 4))
    with torch.no_grad():
        full = model(tokens, actions)
        for past in (1, 3):  # a short cache at the start, a full one after
            cache = model.prefill(tokens[:, :past], actions[:, :past])
            logits, new = model.step(tokens[:, past], actions[:, past], cache)
            assert torch.allclose(logits, full[:, past], atol=1e-5)
        assert cache.shape == (2, 2, 2 * 6, 2, 3, 8)  # layers, k/v, B*N, heads, frames, dh


def test_rolling_cache_stays_bounded():
    torch.manual_seed(0)
    model = STTransformer(TINY).eval()
    tokens = torch.randint(0, 16, (1, 10, 6))
    actions = torch.randint(0, 3, (1, 10))
    with torch.no_grad():
        cache = model.prefill(tokens[:, :3], actions[:, :3])
        for t in range(3, 10):
            _, new = model.step(tokens[:, t], actions[:, t], cache)
            cache = model.append(cache, new)
            assert cache.shape[4] == TINY.context - 1


def test_maskgit_schedule_ends_unmasked():
    assert maskgit_schedule(140, 4)[-1] == 0
    assert maskgit_schedule(140, 4) == sorted(maskgit_schedule(140, 4), reverse=True)


def test_grouped_tokens_split_into_codes_and_back_through_maskgit():
    tokens = torch.tensor([0, 5, 15, GROUPED.mask_id])
    assert group_codes(tokens, GROUPED).tolist() == [[0, 0], [1, 1], [3, 3], [4, 4]]  # 4: masked
    assert STTransformer(GROUPED).head.out_features == 2 * 4  # each group's codes, not 16 tokens

    # Logits that want code (t % 4) in group 0 and code (t // 4 % 4) in group 1 at position t.
    want = np.array([[t % 4, t // 4 % 4] for t in range(6)])
    logits = np.full((6, 2, 4), -5.0, np.float32)
    for t, (a, b) in enumerate(want):
        logits[t, 0, a] = logits[t, 1, b] = 5.0
    tokens = maskgit(lambda _: logits.reshape(6, 8), 6, GROUPED.mask_id, Sampling(steps=2),
                     np.random.default_rng(0), groups=2)
    assert tokens.tolist() == [a * 4 + b for a, b in want]


def test_decoding_keeps_to_the_vocabulary_and_its_best_token():
    from neuralplay.runtime.skiing import Vocabulary

    # Two groups of 4 codes; position 0 wants codes (1, 2): token 6, which the vocabulary lacks.
    logits = np.full((2, 2, 4), -5.0, np.float32)
    logits[0, 0, 1], logits[0, 1, 2] = 5.0, 5.0
    logits[0, 0, 3], logits[0, 1, 0] = 4.0, 3.0  # of the allowed: (1, 0) scores 8, (3, 2) scores 9
    logits[1, 0, 0], logits[1, 1, 1] = 5.0, 5.0  # position 1 wants token 1, which is allowed
    vocabulary = Vocabulary(np.array([1, 4, 14, 1]), codes_per_group=4, groups=2)  # tokens 1, 4, 14
    decode = lambda vocab: maskgit(lambda _: logits.reshape(2, 8), 2, GROUPED.mask_id, Sampling(steps=1),  # noqa: E731
                                   np.random.default_rng(0), groups=2, vocabulary=vocab)
    assert decode(None).tolist() == [6, 1]  # each group on its own
    assert decode(vocabulary).tolist() == [14, 1]  # (3, 2), the vocabulary's best for position 0

    rng = np.random.default_rng(0)  # drawn: always a token of the vocabulary, as often as its share there
    drawn = np.array([maskgit(lambda _: logits.reshape(2, 8), 2, GROUPED.mask_id, Sampling(steps=1, temperature=1.0),
                              rng, groups=2, vocabulary=vocabulary) for _ in range(2000)])
    assert set(drawn.ravel()) <= {1, 4, 14}
    assert abs((drawn[:, 0] == 14).mean() - 1 / (1 + np.exp(-1.0))) < 0.03  # e^9 / (e^9 + e^8)
