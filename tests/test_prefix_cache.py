"""FrozenPrefixCache: exact logits from cached layer-k states, each input's prefix computed once."""

from __future__ import annotations

import pytest
import torch

from benchmarks.models import MODELS, build_model
from benchmarks.models.prefix_cache import FrozenPrefixCache
from benchmarks.scenarios.base import ScenarioInfo

INFO = ScenarioInfo(name="t", family="t", setting="class_il", n_experiences=1, n_outputs=5, input_shape=(2, 12),
                    modality="text", classes_per_experience=((0, 1, 2, 3, 4),), sample_bytes=192)


def _model(frozen: int):
    torch.manual_seed(0)
    params = MODELS.get("text_transformer").params(d_model=32, n_layers=3, n_heads=4, d_ff=64, vocab_size=50,
                                                   frozen_layers=frozen)
    return build_model("text_transformer", params, INFO)


def _inputs(n: int = 6) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 50, (n, 12), generator=gen)
    lengths = torch.randint(3, 13, (n,), generator=gen)
    mask = (torch.arange(12)[None, :] < lengths[:, None]).long()
    return torch.stack([ids * mask, mask], dim=1)  # (n, 2, 12)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_cached_logits_equal_the_full_forward(k):
    model, cache, x = _model(k).eval(), FrozenPrefixCache(), _inputs()
    assert torch.allclose(cache.forward(model, x), model(x), atol=1e-5)
    assert cache.misses == len(x)
    assert torch.allclose(cache.forward(model, x[[4, 1]]), model(x[[4, 1]]), atol=1e-5)
    assert cache.misses == len(x)  # second pass: nothing recomputed


def test_gradients_reach_only_the_trainable_blocks():
    model, cache, x = _model(2).train(), FrozenPrefixCache(), _inputs()
    cache.forward(model, x).sum().backward()
    trained = {n for n, p in model.named_parameters() if p.grad is not None}
    assert trained and all(n.startswith(("blocks.2.", "ln_f.", "head.")) for n in trained)


def test_refuses_a_model_without_a_frozen_prefix():
    with pytest.raises(ValueError, match="freeze_below"):
        FrozenPrefixCache().forward(_model(-1), _inputs())
    with pytest.raises(ValueError, match="freeze_below"):
        FrozenPrefixCache().forward(_model(3), _inputs())  # all blocks frozen: feature_memo's case


def test_another_prefix_does_not_reuse_entries():
    cache, x = FrozenPrefixCache(), _inputs()
    cache.forward(_model(1).eval(), x)
    model2 = _model(2).eval()
    assert torch.allclose(cache.forward(model2, x), model2(x), atol=1e-5)
    assert cache.misses == 2 * len(x)
