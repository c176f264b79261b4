"""clbench's Transformer plugins: attention regularisation and feature (latent) replay, branch by branch."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from benchmarks.models import build_model
from benchmarks.models.vit import ViT, ViTParams
from benchmarks.scenarios import build_scenario
from benchmarks.scenarios.synthetic import SyntheticParams
from strategies.plugins.attention_reg import AttentionRegPlugin, attention_distance
from strategies.plugins.feature_replay import FeatureReplayPlugin

L, D = 16, 64  # tokens and width of the default ViT on 28x28 images


def _info(setting: str = "class_il", n_outputs: int = 4):
    from benchmarks.core import ScenarioInfo

    return ScenarioInfo(
        name="t", family="synthetic", setting=setting, n_experiences=2, n_outputs=n_outputs,
        input_shape=(1, 28, 28), modality="image", classes_per_experience=((0, 1), (2, 3)), sample_bytes=3136,
    )


def make_vit(seed: int = 0, **params) -> ViT:
    torch.manual_seed(seed)
    return build_model("vit", ViTParams(**params), _info())


def _strategy(model, x=None, experience=None, loss=0.0):
    """The fields of an Avalanche strategy the plugins read."""
    return SimpleNamespace(model=model, mb_x=x, loss=torch.tensor(loss), experience=experience,
                           device=torch.device("cpu"), eval_mb_size=7)


def _stream(train_per_class: int = 12, n_classes: int = 4, n_experiences: int = 2):
    params = SyntheticParams(n_classes=n_classes, n_experiences=n_experiences, train_per_class=train_per_class)
    return build_scenario("synthetic_class_il", params, seed=0).benchmark.train_stream


def _perturb(module: torch.nn.Module, scale: float, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))


# --------------------------------------------------------------------------------------------
# attention_distance on hand-made maps

A_OLD = torch.tensor([[0.5, 0.5], [1.0, 0.0]])[None, None]  # (1, 1, 2, 2)
A_NEW = torch.tensor([[0.25, 0.75], [0.5, 0.5]])[None, None]


def test_kl_on_hand_made_maps():
    row0 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    row1 = 1.0 * math.log(1.0 / 0.5)  # 0 * log(0 / 0.5) = 0
    assert attention_distance(A_OLD, A_NEW, mode="kl").item() == pytest.approx((row0 + row1) / 2, rel=1e-6)


def test_l2_on_hand_made_maps():
    row0 = 0.25**2 + 0.25**2
    row1 = 0.5**2 + 0.5**2
    assert attention_distance(A_OLD, A_NEW, mode="l2").item() == pytest.approx((row0 + row1) / 2, rel=1e-6)


def test_distance_averages_heads_and_batch():
    same = A_OLD.clone()
    old = torch.cat([torch.cat([A_OLD, same], 1), torch.cat([same, same], 1)])  # (2, 2, 2, 2)
    new = torch.cat([torch.cat([A_NEW, same], 1), torch.cat([same, same], 1)])
    single = attention_distance(A_OLD, A_NEW, mode="l2").item()
    assert attention_distance(old, new, mode="l2").item() == pytest.approx(single / 4, rel=1e-6)


@pytest.mark.parametrize("mode", ["kl", "l2"])
def test_mask_excludes_padded_queries_and_keys(mode):
    pad_old = torch.zeros(1, 1, 3, 3)
    pad_new = torch.zeros(1, 1, 3, 3)
    pad_old[..., :2, :2], pad_new[..., :2, :2] = A_OLD, A_NEW
    pad_new[..., :2, 2] = 0.3  # mass on the padded key of real queries: ignored
    pad_old[..., 2, :], pad_new[..., 2, :] = torch.tensor([0.9, 0.05, 0.05]), torch.tensor([0.05, 0.05, 0.9])
    mask = torch.tensor([[True, True, False]])
    expected = attention_distance(A_OLD, A_NEW, mode=mode).item()
    assert attention_distance(pad_old, pad_new, mask, mode=mode).item() == pytest.approx(expected, rel=1e-6)
    assert attention_distance(pad_old, pad_new, None, mode=mode).item() != pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("mode", ["kl", "l2"])
def test_distance_is_zero_for_equal_maps_and_grows_with_divergence(mode):
    old = torch.softmax(torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(0)), -1)
    other = torch.softmax(torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(1)) * 3, -1)
    assert attention_distance(old, old.clone(), mode=mode).item() == pytest.approx(0.0, abs=1e-7)
    values = [attention_distance(old, (1 - s) * old + s * other, mode=mode).item() for s in (0.1, 0.4, 0.8)]
    assert values[0] > 0 and values == sorted(values) and values[0] < values[-1]


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        attention_distance(A_OLD, A_NEW, mode="cosine")
    with pytest.raises(ValueError, match="mode"):
        AttentionRegPlugin(lambda_=1.0, mode="cosine")


# --------------------------------------------------------------------------------------------
# AttentionRegPlugin


def test_first_experience_has_no_attention_penalty():
    model = make_vit()
    plugin = AttentionRegPlugin(lambda_=5.0)
    strategy = _strategy(model, torch.randn(4, 1, 28, 28), loss=1.25)
    plugin.before_backward(strategy)
    assert strategy.loss.item() == 1.25
    assert plugin.penalty(model, strategy.mb_x).item() == 0.0


@pytest.mark.parametrize("mode", ["kl", "l2"])
def test_penalty_is_zero_at_snapshot_and_grows_as_model_diverges(mode):
    model = make_vit()
    plugin = AttentionRegPlugin(lambda_=2.0, mode=mode)
    plugin.after_training_exp(_strategy(model))
    x = torch.randn(6, 1, 28, 28)
    assert plugin.penalty(model, x).item() == 0.0
    values = []
    for scale in (0.01, 0.05, 0.2):
        moved = make_vit()
        _perturb(moved, scale)
        values.append(plugin.penalty(moved, x).item())
    assert 0 < values[0] < values[1] < values[2]
    strategy = _strategy(moved, x, loss=1.0)
    plugin.before_backward(strategy)
    assert strategy.loss.item() == pytest.approx(1.0 + 2.0 * values[2], rel=1e-5)


def test_penalty_matches_attention_distance_and_trains_only_the_model():
    model = make_vit()
    plugin = AttentionRegPlugin(lambda_=1.0, mode="l2")
    plugin.after_training_exp(_strategy(model))
    _perturb(model, 0.1)
    x = torch.randn(3, 1, 28, 28)
    old = plugin.snapshot.encode(x, output_attentions=True)
    new = model.encode(x, output_attentions=True)
    manual = sum(attention_distance(o, n, new.mask, "l2") for o, n in zip(old.attentions, new.attentions)) / 2
    value = plugin.penalty(model, x)
    assert value.item() == pytest.approx(manual.item(), rel=1e-5)
    value.backward()
    assert model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in plugin.snapshot.parameters())


def test_layers_and_heads_select_what_is_compared():
    model = make_vit()
    plugin_all = AttentionRegPlugin(lambda_=1.0)
    plugin_all.after_training_exp(_strategy(model))
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():  # change only the queries of head 0 in block 1
        model.blocks[1].attn.qkv.weight[: D // 4].add_(torch.randn(D // 4, D))
    for layers, heads, moved in [((0,), (), False), ((1,), (), True), ((1,), (1, 2, 3), False), ((1,), (0,), True)]:
        plugin = AttentionRegPlugin(lambda_=1.0, layers=layers, heads=heads)
        plugin.snapshot = plugin_all.snapshot
        value = plugin.penalty(model, x).item()
        assert (value > 1e-6) == moved, (layers, heads, value)


def test_attention_maps_compared_without_dropout_and_modes_restored():
    model = make_vit(dropout=0.5)
    plugin = AttentionRegPlugin(lambda_=1.0)
    plugin.after_training_exp(_strategy(model))
    model.train()
    model.blocks[1].eval()  # a mixed state must come back as it was
    assert plugin.penalty(model, torch.randn(4, 1, 28, 28)).item() == 0.0
    assert model.training and model.blocks[0].training and not model.blocks[1].training


class PaddedViT(ViT):
    """A ViT whose last 4 tokens are padding, as a text encoder's would be (mask from encode)."""

    def encode(self, x, *, upto=None, output_attentions=False):
        h = self.embed_tokens(x)
        mask = torch.ones(h.shape[:2], dtype=torch.bool)
        mask[:, -4:] = False
        return self._run_blocks(h, mask, 0, self.n_layers if upto is None else upto, output_attentions)


def test_plugin_uses_the_padding_mask_of_the_encoder():
    torch.manual_seed(0)
    model = PaddedViT((1, 28, 28), ViTParams(), _info())
    plugin = AttentionRegPlugin(lambda_=1.0)
    plugin.after_training_exp(_strategy(model))
    _perturb(model, 0.1)
    x = torch.randn(3, 1, 28, 28)
    old = plugin.snapshot.encode(x, output_attentions=True)
    new = model.encode(x, output_attentions=True)
    assert torch.all(new.attentions[0][..., -4:] == 0)
    masked = sum(attention_distance(o, n, new.mask) for o, n in zip(old.attentions, new.attentions)) / 2
    unmasked = sum(attention_distance(o, n) for o, n in zip(old.attentions, new.attentions)) / 2
    value = plugin.penalty(model, x).item()
    assert value == pytest.approx(masked.item(), rel=1e-5)
    assert value != pytest.approx(unmasked.item(), rel=1e-3)


# --------------------------------------------------------------------------------------------
# FeatureReplayPlugin


def _fill(plugin, model, stream, upto: int | None = None):
    """Run the plugin's after_training_exp over the stream (no training), as the template would."""
    for i, exp in enumerate(stream):
        if upto is not None and i >= upto:
            break
        plugin.after_training_exp(_strategy(model, experience=exp))


def _all_inputs(stream):
    xs, ys = [], []
    for exp in stream:
        for x, y, _t in torch.utils.data.DataLoader(exp.dataset.eval(), batch_size=100):
            xs.append(x)
            ys.append(y)
    return torch.cat(xs), torch.cat(ys)


def test_buffer_stores_layer_k_hidden_states_of_real_samples():
    model = make_vit()
    plugin = FeatureReplayPlugin(layer=1, mem_size=12)
    stream = _stream()
    _fill(plugin, model, stream)
    flat = plugin.buffer.flat()
    assert flat["h"].shape == (12, L, D) and flat["mask"].shape == (12, L) and flat["mask"].all()
    x, y = _all_inputs(stream)
    with torch.no_grad():
        reference = model.encode(x, upto=1).hidden  # (N, L, D)
    nearest = torch.cdist(flat["h"].flatten(1), reference.flatten(1)).argmin(1)  # (12,) into N
    torch.testing.assert_close(flat["h"], reference[nearest], rtol=0, atol=1e-5)
    assert torch.equal(y[nearest], flat["y"])
    assert len(set(nearest.tolist())) == 12  # distinct samples
    with torch.no_grad():
        other_layer = model.encode(x, upto=2).hidden
    assert not torch.allclose(flat["h"], other_layer[nearest], atol=1e-3)


def test_buffer_stays_class_balanced_and_is_seeded():
    stream = _stream(train_per_class=12, n_classes=6, n_experiences=3)
    model = make_vit()
    plugin = FeatureReplayPlugin(mem_size=10, seed=3)
    counts_after = []
    for exp in stream:
        plugin.after_training_exp(_strategy(model, experience=exp))
        counts_after.append(torch.bincount(plugin.buffer.flat()["y"], minlength=6).tolist())
    assert counts_after[0] == [5, 5, 0, 0, 0, 0]
    assert sorted(counts_after[1], reverse=True)[:4] == [3, 3, 2, 2] and sum(counts_after[1]) == 10
    assert max(counts_after[2]) - min(counts_after[2]) <= 1 and sum(counts_after[2]) == 10
    again = FeatureReplayPlugin(mem_size=10, seed=3)
    _fill(again, make_vit(), stream)
    assert torch.equal(again.buffer.flat()["h"], plugin.buffer.flat()["h"])
    other = FeatureReplayPlugin(mem_size=10, seed=4)
    _fill(other, make_vit(), stream)
    assert not torch.equal(other.buffer.flat()["h"], plugin.buffer.flat()["h"])


@pytest.mark.parametrize("dtype,elem", [("fp32", 4), ("fp16", 2)])
def test_byte_budget_is_never_exceeded(dtype, elem):
    per_sample = L * D * elem + L  # hidden states + bool mask
    budget = 9 * per_sample + per_sample // 2
    plugin = FeatureReplayPlugin(mem_size=1000, mem_bytes=budget, dtype=dtype)
    model = make_vit()
    for exp in _stream(n_classes=4, n_experiences=2):
        plugin.after_training_exp(_strategy(model, experience=exp))
        samples, nbytes = plugin.memory_usage()
        assert nbytes <= budget and samples == 9 and nbytes == samples * per_sample
    assert plugin.buffer.flat()["h"].dtype == (torch.float16 if dtype == "fp16" else torch.float32)


def test_sample_budget_wins_when_tighter_and_fp16_halves_hidden_bytes():
    usages = {}
    for dtype in ("fp32", "fp16"):
        plugin = FeatureReplayPlugin(mem_size=6, mem_bytes=10**9, dtype=dtype)
        _fill(plugin, make_vit(), _stream())
        usages[dtype] = plugin.memory_usage()
    assert usages["fp32"] == (6, 6 * (L * D * 4 + L))
    assert usages["fp16"] == (6, 6 * (L * D * 2 + L))
    assert usages["fp32"][1] - 6 * L == 2 * (usages["fp16"][1] - 6 * L)


def test_model_is_frozen_below_k_after_first_experience_or_from_start():
    model = make_vit(depth=3)
    plugin = FeatureReplayPlugin(layer=-1)
    plugin.before_training_exp(_strategy(model))
    assert all(p.requires_grad for p in model.parameters())
    _fill(plugin, model, _stream(), upto=1)
    assert plugin.split(model) == 2
    assert not any(p.requires_grad for b in model.blocks[:2] for p in b.parameters())
    assert all(p.requires_grad for p in model.blocks[2].parameters())
    config_frozen = make_vit(depth=3)
    config_frozen.blocks[2].requires_grad_(False)  # frozen by the model's own configuration
    FeatureReplayPlugin(layer=1).after_training_exp(_strategy(config_frozen, experience=next(iter(_stream()))))
    assert [b.attn.qkv.weight.requires_grad for b in config_frozen.blocks] == [False, True, False]
    early = make_vit(depth=3)
    FeatureReplayPlugin(layer=1, freeze_from_start=True).before_training_exp(_strategy(early.train()))
    assert not any(p.requires_grad for p in early.blocks[0].parameters())
    assert all(p.requires_grad for p in early.blocks[1].parameters())
    assert not early.blocks[0].training and early.blocks[1].training  # frozen part runs in eval mode


def test_train_lower_keeps_the_part_below_k_training_after_the_first_experience():
    """train_lower (an ablation): nothing is frozen, so the lower block still learns in experience 2."""
    model = make_vit(depth=3)
    _fill(FeatureReplayPlugin(layer=-1, train_lower=True), model, _stream(), upto=1)
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="contradict"):
        FeatureReplayPlugin(freeze_from_start=True, train_lower=True)
    moved = {flag: _lower_block_moves_in_second_experience(flag) for flag in (False, True)}
    assert moved == {False: False, True: True}


def _lower_block_moves_in_second_experience(train_lower: bool) -> bool:
    """Train feature_replay (split 1 of a 2-block ViT) on 2 experiences: did block 0 change in the 2nd?"""
    from benchmarks.engine.evaluation import make_evaluator
    from strategies import STRATEGIES, StrategyContext, TrainConfig

    torch.manual_seed(0)
    model = build_model("vit", ViTParams(depth=2), _info())
    ctx = StrategyContext(model=model, info=_info(), train=TrainConfig(epochs=1), device=torch.device("cpu"),
                          evaluator=make_evaluator())
    entry = STRATEGIES.get("feature_replay")
    strategy = entry.builder(ctx, entry.params(split_layer=1, mem_size=8, train_lower=train_lower))
    first, second = _stream()
    strategy.train(first)
    before = [p.detach().clone() for p in model.blocks[0].parameters()]
    strategy.train(second)
    return any(not torch.equal(b, p) for b, p in zip(before, model.blocks[0].parameters()))


class CallCounter:
    """Forward hooks counting calls and samples of modules."""

    def __init__(self, **modules: torch.nn.Module) -> None:
        self.calls = {name: 0 for name in modules}
        self.samples = {name: 0 for name in modules}
        for name, module in modules.items():
            module.register_forward_hook(self._hook(name))

    def _hook(self, name):
        def hook(module, inputs, output):
            self.calls[name] += 1
            self.samples[name] += len(inputs[0])

        return hook


def test_replay_flows_only_through_layers_above_k():
    model = make_vit(depth=3)
    plugin = FeatureReplayPlugin(layer=2, mem_size=12)
    _fill(plugin, model, _stream(), upto=1)
    counter = CallCounter(embed=model.embed, b0=model.blocks[0], b1=model.blocks[1], b2=model.blocks[2])
    model.zero_grad(set_to_none=True)
    loss = plugin.replay_loss(model, 8)
    loss.backward()
    assert counter.calls == {"embed": 0, "b0": 0, "b1": 0, "b2": 1} and counter.samples["b2"] == 8
    assert all(p.grad is None for m in (model.embed, model.blocks[0], model.blocks[1]) for p in m.parameters())
    assert model.blocks[2].attn.qkv.weight.grad.abs().sum() > 0 and model.head.weight.grad.abs().sum() > 0


def test_frozen_part_is_computed_once_per_stored_sample():
    model = make_vit()
    counter = CallCounter(embed=model.embed)
    plugin = FeatureReplayPlugin(layer=1, mem_size=10)
    for i, exp in enumerate(_stream(train_per_class=12)):
        before = counter.samples["embed"]
        plugin.after_training_exp(_strategy(model, experience=exp))
        added = sum(len(g["y"]) for key, g in plugin.buffer.groups.items() if key[0] == i)
        # each newly stored sample went through the embedding once, plus one probe sample
        assert added > 0 and counter.samples["embed"] - before == added + 1
    outputs = {}

    def keep_output(module, inputs, output) -> None:
        outputs["b0"] = output[0]

    model.blocks[0].register_forward_hook(keep_output)
    strategy = _strategy(model, torch.randn(4, 1, 28, 28), loss=0.0)
    strategy.loss = torch.nn.functional.cross_entropy(model(strategy.mb_x), torch.tensor([0, 1, 2, 3]))
    assert not outputs["b0"].requires_grad  # the current batch builds no graph below k
    before = counter.samples["embed"]
    plugin.before_backward(strategy)
    assert counter.samples["embed"] == before  # replay did not touch the frozen part
    strategy.loss.backward()


def test_before_backward_adds_the_replay_loss_only_with_a_buffer():
    model = make_vit()
    plugin = FeatureReplayPlugin(layer=1, mem_size=8, seed=0)
    strategy = _strategy(model, torch.randn(5, 1, 28, 28), loss=0.5)
    plugin.before_backward(strategy)
    assert strategy.loss.item() == 0.5
    _fill(plugin, model, _stream(), upto=1)
    expected = FeatureReplayPlugin(layer=1, mem_size=8, seed=0)
    _fill(expected, make_vit(), _stream(), upto=1)
    reference = expected.replay_loss(make_vit(), 5).item()  # same seed -> same replayed batch
    plugin.before_backward(strategy)
    assert strategy.loss.item() == pytest.approx(0.5 + reference, rel=1e-5)


def test_pooled_store_replays_through_the_head_only():
    model = make_vit()
    plugin = FeatureReplayPlugin(store="pooled", layer=0, mem_size=8)
    _fill(plugin, model, _stream(), upto=1)
    assert plugin.split(model) == model.n_layers
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]
    flat = plugin.buffer.flat()
    assert flat["h"].shape == (8, D) and "mask" not in flat
    assert plugin.memory_usage() == (8, 8 * D * 4)
    counter = CallCounter(b0=model.blocks[0], b1=model.blocks[1], norm=model.norm)
    plugin.replay_loss(model, 4).backward()
    assert counter.calls == {"b0": 0, "b1": 0, "norm": 0}
    x, _ = _all_inputs(_stream())
    with torch.no_grad():
        feats = model.features(x)
    nearest = torch.cdist(flat["h"], feats).argmin(1)
    torch.testing.assert_close(flat["h"], feats[nearest], rtol=0, atol=1e-5)


def test_pooled_replay_routes_task_labels_to_a_multi_head():
    from avalanche.models.utils import avalanche_model_adaptation

    torch.manual_seed(0)
    model = build_model("vit", ViTParams(), _info("task_il", n_outputs=2))
    stream = build_scenario("synthetic_task_il", SyntheticParams(), seed=0).benchmark.train_stream
    plugin = FeatureReplayPlugin(store="pooled", mem_size=8)
    for exp in stream:
        avalanche_model_adaptation(model, exp)
        plugin.after_training_exp(_strategy(model, experience=exp))
    item = plugin.buffer.flat()
    assert sorted(set(item["t"].tolist())) == [0, 1]
    logits = plugin.upper(model, item)
    for task in (0, 1):
        rows = item["t"] == task
        head = model.head.classifiers[str(task)]
        torch.testing.assert_close(logits[rows], head(item["h"][rows].float()), rtol=0, atol=1e-5)


def test_invalid_options_are_refused():
    with pytest.raises(ValueError, match="outside"):
        FeatureReplayPlugin(layer=5).split(make_vit())
    with pytest.raises(ValueError, match="outside"):
        FeatureReplayPlugin(layer=-3).split(make_vit())
    with pytest.raises(ValueError):
        FeatureReplayPlugin(dtype="bf8")
    with pytest.raises(ValueError):
        FeatureReplayPlugin(mem_size=0)


# --------------------------------------------------------------------------------------------
# the same plugins on a text backbone (token ids + attention mask, padding)

TEXT_L = 8


def _text_model():
    from benchmarks.core import ScenarioInfo
    from benchmarks.models.text_transformer import TextTransformerParams

    info = ScenarioInfo(name="t", family="split_text", setting="class_il", n_experiences=2, n_outputs=4,
                        input_shape=(2, TEXT_L), modality="text", classes_per_experience=((0, 1), (2, 3)),
                        sample_bytes=2 * TEXT_L * 8)
    torch.manual_seed(0)
    params = TextTransformerParams(d_model=32, n_layers=2, n_heads=2, d_ff=64, vocab_size=50, dropout=0.1)
    return build_model("text_transformer", params, info)


def _text_inputs(n: int, seed: int = 0) -> torch.Tensor:
    """(n, 2, L) token ids + masks with 2..L real tokens each (the rest is padding, id 0)."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, TEXT_L + 1, (n,), generator=gen)
    mask = (torch.arange(TEXT_L)[None, :] < lengths[:, None]).long()
    ids = torch.randint(1, 50, (n, TEXT_L), generator=gen) * mask
    return torch.stack([ids, mask], dim=1)


def test_attention_penalty_on_text_ignores_padded_positions():
    model = _text_model()
    plugin = AttentionRegPlugin(lambda_=1.0)
    plugin.after_training_exp(_strategy(model))
    x = _text_inputs(6)
    assert plugin.penalty(model.train(), x).item() == 0.0  # dropout 0.1, yet exactly 0 (eval-mode maps)
    _perturb(model, 0.05)
    value = plugin.penalty(model, x).item()
    assert value > 0
    garbage = x.clone()
    garbage[:, 0] = torch.where(x[:, 1].bool(), x[:, 0], torch.randint(1, 50, x[:, 0].shape))  # padded ids only
    assert plugin.penalty(model, garbage).item() == pytest.approx(value, rel=1e-5)


def test_feature_replay_on_text_stores_tokens_with_their_masks():
    from avalanche.benchmarks import nc_benchmark

    from benchmarks.data.tensors import LabelledTensorDataset

    x, y = _text_inputs(48, seed=1), torch.arange(4).repeat(12)
    bench = nc_benchmark(LabelledTensorDataset(x, y), LabelledTensorDataset(x, y), n_experiences=2,
                         task_labels=False, shuffle=False, seed=0, fixed_class_order=[0, 1, 2, 3])
    model = _text_model()
    plugin = FeatureReplayPlugin(layer=1, mem_size=8)
    _fill(plugin, model, bench.train_stream)
    flat = plugin.buffer.flat()
    assert flat["h"].shape == (8, TEXT_L, 32) and flat["mask"].dtype == torch.bool
    with torch.no_grad():
        reference = model.eval().encode(x, upto=1).hidden
    nearest = torch.cdist(flat["h"].flatten(1), reference.flatten(1)).argmin(1)
    torch.testing.assert_close(flat["h"], reference[nearest], rtol=0, atol=1e-5)
    assert torch.equal(flat["mask"], x[nearest, 1].bool()) and not flat["mask"].all()
    item = {**plugin.buffer.flat(), "t": torch.zeros(8, dtype=torch.long)}
    item["mask"][:, -3:] = False  # the last 3 positions are padding in every stored row
    shapes = []
    model.blocks[1].register_forward_hook(lambda module, inputs, output: shapes.append(inputs[0].shape[1]))
    with torch.no_grad():
        full, _ = model.eval().decode(item["h"].float(), item["mask"], start=1)
        torch.testing.assert_close(plugin.upper(model, item), full, rtol=0, atol=1e-5)  # trimming is exact
    assert shapes == [TEXT_L, TEXT_L - 3]  # ... and the replayed states ran at the trimmed length
    counter = CallCounter(tok=model.tok, b0=model.blocks[0], b1=model.blocks[1])
    plugin.replay_loss(model.train(), 5).backward()
    assert counter.calls == {"tok": 0, "b0": 0, "b1": 1}
    assert model.tok.weight.grad is None and model.blocks[1].attn.qkv.weight.grad is not None


# --------------------------------------------------------------------------------------------
# strategies built from the plugins (through the registry and the runner)


def _run(name: str, hparams: dict, **scenario):
    from helpers import tiny_specs

    from benchmarks.engine.runner import run_one

    (spec,) = tiny_specs([name], model={"name": "vit"}, hparams={name: hparams}, **scenario)
    result = run_one(spec)
    assert result["status"] == "ok", result["error"]
    return result


def test_feature_replay_reports_its_bytes_through_the_runner():
    per_sample = L * D * 2 + L + 1  # fp16 states + bool mask + 1-byte label (benchmarks/core/storage.py)
    result = _run("feature_replay", {"mem_size": 1000, "mem_bytes": 10 * per_sample + per_sample // 2, "dtype": "fp16"})
    assert result["replay_memory"] == {"samples": 10, "bytes": 10 * per_sample}


def test_replay_budget_in_bytes_converts_with_sample_bytes():
    result = _run("replay", {"mem_size": 1000, "mem_bytes": 10 * 3137 + 100})  # float32 input + 1-byte label
    assert result["replay_memory"] == {"samples": 10, "bytes": 10 * 3137}


def test_composition_regularises_only_trainable_blocks_by_default():
    from benchmarks.engine.evaluation import make_evaluator
    from strategies import STRATEGIES, StrategyContext, TrainConfig

    entry = STRATEGIES.get("feature_replay+attn_reg")
    assert entry.meta["needs_transformer"]
    plugins = {}
    for attn_layers in ((), (0, 1)):
        model = build_model("vit", ViTParams(depth=3), _info())
        ctx = StrategyContext(model=model, info=_info(), train=TrainConfig(), device=torch.device("cpu"),
                              evaluator=make_evaluator())
        strategy = entry.builder(ctx, entry.params(split_layer=1, attn_layers=attn_layers))
        plugins[attn_layers] = {type(p).__name__: p for p in strategy.plugins}
    assert plugins[()]["AttentionRegPlugin"].layers == (1, 2)
    assert plugins[(0, 1)]["AttentionRegPlugin"].layers == (0, 1)
    assert plugins[()]["FeatureReplayPlugin"].layer == 1
    with pytest.raises(ValueError, match="pooled"):
        entry.builder(ctx, entry.params(store="pooled"))


@pytest.mark.integration
@pytest.mark.parametrize("name", ["attn_reg", "feature_replay", "feature_replay+attn_reg"])
def test_strategy_runs_on_split_mnist_with_the_vit(name):
    from benchmarks.config.loader import expand
    from benchmarks.data.cache import mirror_dir
    from benchmarks.engine.runner import run_one

    if mirror_dir() is None or not (mirror_dir() / "mnist").is_dir():
        pytest.skip("no MNIST mirror")
    doc = {
        "suite": {"seeds": [0], "strategies": [name], "device": "cpu"},
        "train": {"epochs": 1, "batch_size": 64},
        "hparams": {name: {"mem_size": 200}} if "replay" in name else {},
        "scenarios": {"s": {"scenario": "split_mnist_class_il", "model": {"name": "vit"},
                            "train_fraction": 0.03, "test_fraction": 0.03}},
    }
    (spec,) = expand(doc, name="t", where="t")
    result = run_one(spec)
    assert result["status"] == "ok", result["error"]
    R = result["accuracy_matrix"]
    assert len(R) == 5 and R[0][0] > 0.9  # the first pair of digits is learned
    if "replay" in name:
        assert result["replay_memory"] == {"samples": 200, "bytes": 200 * (16 * 64 * 4 + 16 + 1)}
