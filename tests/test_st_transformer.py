"""The Skiing dynamics model on a tiny config: training loss, and the cached one-frame path
giving what the full forward gives."""
import pytest

torch = pytest.importorskip("torch")

from neuralplay.models.st_transformer import STConfig, STTransformer  # noqa: E402
from neuralplay.runtime.skiing import maskgit_schedule  # noqa: E402

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


def test_cached_step_matches_the_full_forward():
    torch.manual_seed(0)
    model = STTransformer(TINY).eval()
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
