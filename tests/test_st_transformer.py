"""The Skiing dynamics model on a tiny config: training loss, and the cached one-frame path
giving what the full forward gives."""
import pytest

torch = pytest.importorskip("torch")

from neuralplay.models.st_transformer import STConfig, STTransformer, maskgit_schedule  # noqa: E402

TINY = STConfig(codebook_size=16, grid=(3, 2), context=4, d_model=16, n_layers=2, n_heads=2, d_ff=32)


def test_loss_trains_down_on_a_learnable_clip():
    torch.manual_seed(0)
    model = STTransformer(TINY)
    tokens = torch.randint(0, 16, (8, 4, 6))
    tokens[:, -1] = tokens[:, -2]  # the next frame repeats the last: learnable
    actions = torch.randint(0, 3, (8, 4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss, acc = model.loss(tokens, actions, torch.Generator().manual_seed(1))
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 2


def test_cached_prediction_matches_the_full_forward():
    torch.manual_seed(0)
    model = STTransformer(TINY).eval()
    tokens = torch.randint(0, 17, (2, 4, 6))
    actions = torch.randint(0, 4, (2, 4))
    with torch.no_grad():
        full = model(tokens, actions)
        cache = model.empty_cache(2)
        for t in range(4):
            logits, new = model.predict(tokens[:, t], actions[:, t], t, cache)
            assert torch.allclose(logits, full[:, t], atol=1e-5)
            cache = model.append(cache, new)
    assert cache[0][0].shape[2] == 3  # bounded: context - 1 frames


def test_rolling_cache_only_depends_on_frame_offsets():
    torch.manual_seed(0)
    model = STTransformer(TINY).eval()
    tokens = torch.randint(0, 16, (1, 4, 6))
    actions = torch.randint(0, 3, (1, 4))
    with torch.no_grad():
        def run(t0):
            cache = model.empty_cache(1)
            for i in range(4):
                logits, new = model.predict(tokens[:, i], actions[:, i], t0 + i, cache)
                cache = model.append(cache, new)
            return logits
        assert torch.allclose(run(0), run(100), atol=1e-4)


def test_maskgit_schedule_ends_unmasked():
    assert maskgit_schedule(140, 4)[-1] == 0
    assert maskgit_schedule(140, 4) == sorted(maskgit_schedule(140, 4), reverse=True)
