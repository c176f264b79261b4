"""The tiny ViT implements transformer_api.py: encode/decode split, attention maps, masks, freezing, heads."""

from __future__ import annotations

import copy

import pytest
import torch

from benchmarks.core import ScenarioInfo
from benchmarks.models import MODELS, build_model
from benchmarks.models.transformer_api import is_transformer
from benchmarks.models.vit import ViTParams


def _info(setting: str = "class_il", shape=(1, 28, 28), n_outputs: int = 4) -> ScenarioInfo:
    return ScenarioInfo(
        name="t", family="synthetic", setting=setting, n_experiences=2, n_outputs=n_outputs, input_shape=shape,
        modality="image", classes_per_experience=((0, 1), (2, 3)), sample_bytes=28 * 28 * 4,
    )


def _vit(setting: str = "class_il", **params):
    torch.manual_seed(0)
    return build_model("vit", ViTParams(**params), _info(setting))


def test_registered_as_image_transformer():
    meta = MODELS.get("vit").meta
    assert meta["modality"] == "image" and meta["transformer"] is True
    model = _vit()
    assert is_transformer(model) and model.n_layers == 2


@pytest.mark.parametrize("pool", ["mean", "cls"])
def test_encode_decode_round_trip_equals_forward_at_every_split(pool):
    model = _vit(pool=pool).eval()
    x = torch.randn(5, 1, 28, 28)
    expected = model(x)
    assert expected.shape == (5, 4)
    for k in range(model.n_layers + 1):
        out = model.encode(x, upto=k)
        assert out.hidden.shape == (5, 16 + (pool == "cls"), 64)
        logits, _ = model.decode(out.hidden, out.mask, start=k)
        torch.testing.assert_close(logits, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(model.apply_head(model.features(x)), expected)


def test_attention_maps_are_probabilities_per_block():
    model = _vit(depth=3, heads=2, dim=32).eval()
    out = model.encode(torch.randn(3, 1, 28, 28), output_attentions=True)
    assert out.layers == [0, 1, 2] and len(out.attentions) == 3
    for a in out.attentions:
        assert a.shape == (3, 2, 16, 16)
        torch.testing.assert_close(a.sum(-1), torch.ones(3, 2, 16))
    part = model.encode(torch.randn(3, 1, 28, 28), upto=1, output_attentions=True)
    assert part.layers == [0]
    assert model.encode(torch.randn(3, 1, 28, 28)).attentions == []
    _, dec = model.decode(part.hidden, part.mask, start=1, output_attentions=True)
    assert dec.layers == [1, 2]


def test_padded_tokens_get_no_attention_and_do_not_change_logits():
    model = _vit().eval()
    out = model.encode(torch.randn(2, 1, 28, 28))
    mask = out.mask.clone()
    mask[:, -5:] = False  # pretend the last 5 tokens are padding
    logits, dec = model.decode(out.hidden, mask, start=0, output_attentions=True)
    for a in dec.attentions:
        assert torch.all(a[..., -5:] == 0)
    changed = out.hidden.clone()
    changed[:, -5:] = torch.randn_like(changed[:, -5:]) * 10
    logits2, _ = model.decode(changed, mask, start=0)
    torch.testing.assert_close(logits2, logits, rtol=0, atol=1e-5)
    logits_all, _ = model.decode(changed, out.mask, start=0)
    assert not torch.allclose(logits_all, logits)


def test_freeze_below_freezes_embedding_and_lower_blocks_only():
    model = _vit(depth=3, pool="cls")
    model.freeze_below(2)
    assert not model.pos.requires_grad and not model.cls.requires_grad
    assert not any(p.requires_grad for p in model.embed.parameters())
    assert not any(p.requires_grad for b in model.blocks[:2] for p in b.parameters())
    assert all(p.requires_grad for p in model.blocks[2].parameters())
    assert all(p.requires_grad for p in [*model.norm.parameters(), *model.head.parameters()])
    model.train()
    assert not model.embed.training and not model.blocks[1].training and model.blocks[2].training
    assert model.training and model.head.training
    with pytest.raises(ValueError):
        model.freeze_below(4)


def test_deepcopy_after_forward_caches_no_tensors():
    model = _vit()
    model.encode(torch.randn(2, 1, 28, 28), output_attentions=True)
    model(torch.randn(2, 1, 28, 28)).sum().backward()
    for module in model.modules():
        cached = [k for k, v in vars(module).items() if isinstance(v, torch.Tensor) and not k.startswith("_")]
        assert cached == [], f"{type(module).__name__} caches {cached}"
    clone = copy.deepcopy(model)
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(clone(x), model(x))


def test_multi_head_vit_routes_task_labels():
    from avalanche.models.utils import avalanche_model_adaptation

    from benchmarks.scenarios import build_scenario
    from benchmarks.scenarios.synthetic import SyntheticParams

    model = build_model("vit", ViTParams(), _info("task_il", n_outputs=2))
    bench = build_scenario("synthetic_task_il", SyntheticParams(), seed=0).benchmark
    for exp in bench.train_stream:
        avalanche_model_adaptation(model, exp)
    model.eval()
    x = torch.randn(4, 1, 28, 28)
    t = torch.tensor([0, 1, 0, 1])
    logits = model(x, t)
    assert logits.shape == (4, 2)
    feats = model.features(x)
    for i in range(4):
        head = model.head.classifiers[str(int(t[i]))]
        torch.testing.assert_close(logits[i], head(feats[i : i + 1])[0], rtol=0, atol=1e-5)
    out = model.encode(x, upto=1)
    decoded, _ = model.decode(out.hidden, out.mask, start=1, task_labels=t)
    torch.testing.assert_close(decoded, logits, rtol=0, atol=1e-5)
    assert not torch.allclose(model(x, torch.zeros(4, dtype=torch.long)), model(x, torch.ones(4, dtype=torch.long)))
    with pytest.raises(ValueError, match="task_labels"):
        model.decode(out.hidden, out.mask, start=1)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="patch"):
        build_model("vit", ViTParams(patch=5), _info())
    with pytest.raises(ValueError, match="heads must divide dim"):
        ViTParams(dim=30, heads=4)
    with pytest.raises(ValueError, match="image inputs"):
        build_model("vit", ViTParams(), _info(shape=(32,)))
