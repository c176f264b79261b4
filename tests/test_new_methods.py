"""The methods of issue 13 (l1, coreset replay, La-MAML, LoRA per experience): each one's own checks,
including one that fails if the method does nothing. The registry-wide tests (test_strategies.py,
test_fastdata.py) run them in every setting they declare."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_specs

from benchmarks.engine.runner import run_one


def _run(name: str, setting: str = "class_il", model: str = "mlp", **hparams) -> dict:
    (spec,) = tiny_specs([name], scenario=f"synthetic_{setting}", model={"name": model}, hparams={name: hparams})
    result = run_one(spec)
    assert result["status"] == "ok", result["error"]
    return result


# -- l1 (strategies/plugins/l2.py with norm=1) -------------------------------------------------------
def test_l1_penalty_is_the_sum_of_absolute_differences():
    from strategies.plugins.l2 import L2Plugin

    model = torch.nn.Linear(3, 2)
    l1, l2 = L2Plugin(l2_lambda=1.0, norm=1), L2Plugin(l2_lambda=1.0)
    for plugin in (l1, l2):
        plugin.anchor = {n: p.detach() - 0.5 for n, p in model.named_parameters()}
    n = sum(p.numel() for p in model.parameters())
    assert l1.penalty(model).item() == pytest.approx(0.5 * n)
    assert l2.penalty(model).item() == pytest.approx(0.25 * n)
    with pytest.raises(ValueError, match="norm must be 1 or 2"):
        L2Plugin(l2_lambda=1.0, norm=3)


def test_l1_changes_what_is_learned():
    naive = _run("naive")["accuracy_matrix"]
    assert _run("l1", l1_lambda=1.0)["accuracy_matrix"] != naive
    assert _run("l1", l1_lambda=0.0)["accuracy_matrix"] == naive


# -- coreset replay (strategies/coreset_replay.py) ----------------------------------------------------
def _buffer_after_first_experience(name: str, mem_size: int):
    """(model, {class: kept inputs (k, ...)}, {class: all inputs of the class}) after experience 0."""
    from benchmarks.engine.runner import _build
    from benchmarks.fastpath.gather import gather_items

    (spec,) = tiny_specs([name], model={"name": "mlp"}, hparams={name: {"mem_size": mem_size}})
    scenario, strategy = _build(spec, torch.device("cpu"))
    exp = scenario.benchmark.train_stream[0]
    strategy.train(exp)
    policy = next(p for p in strategy.plugins if hasattr(p, "storage_policy")).storage_policy
    x, y = gather_items(exp.dataset)[:2]
    kept = {c: gather_items(g.buffer)[0] for c, g in policy.buffer_groups.items()}
    return strategy.model.eval(), kept, {c: x[y == c] for c in kept}


def _unit_features(model, x):
    """L2-normalised features (N, D): the space coreset selection works in (iCaRL's)."""
    with torch.no_grad():
        return torch.nn.functional.normalize(model.features(x), dim=1)


def _mean_gap(model, chosen, everything) -> float:
    return (_unit_features(model, chosen).mean(0) - _unit_features(model, everything).mean(0)).norm().item()


def test_centroid_replay_keeps_the_samples_closest_to_the_class_mean():
    model, kept, whole = _buffer_after_first_experience("replay_centroid", mem_size=8)
    assert len(kept) == 2 and all(len(v) == 4 for v in kept.values())  # 8 over the 2 classes seen
    for c, x in whole.items():
        f = _unit_features(model, x)
        closest = x[(f - f.mean(0)).pow(2).sum(1).argsort()[:4]]
        assert sorted(map(bytes, closest.numpy())) == sorted(map(bytes, kept[c].numpy()))


def test_herding_replay_matches_the_class_mean_better_than_random_picks():
    model, kept, whole = _buffer_after_first_experience("replay_herding", mem_size=8)
    gen = torch.Generator().manual_seed(0)
    for c, x in whole.items():
        herded = _mean_gap(model, kept[c], x)
        randoms = [_mean_gap(model, x[torch.randperm(len(x), generator=gen)[:4]], x) for _ in range(20)]
        assert herded < min(randoms)


# -- La-MAML (strategies/lamaml.py) -------------------------------------------------------------------
def test_lamaml_keeps_initial_weights_learns_its_rates_and_fills_its_buffer():
    from benchmarks.engine.memory import replay_memory
    from benchmarks.engine.runner import _build

    (naive_spec,) = tiny_specs(["naive"], model={"name": "mlp"})
    (spec,) = tiny_specs(["lamaml"], model={"name": "mlp"}, hparams={"lamaml": {"mem_size": 20}})
    _, naive = _build(naive_spec, torch.device("cpu"))
    scenario, strategy = _build(spec, torch.device("cpu"))
    initial = {k: v.clone() for k, v in strategy.model.inner.state_dict().items()}
    assert all(torch.equal(initial[k], v) for k, v in naive.model.state_dict().items())  # no re-init
    for exp in scenario.benchmark.train_stream:
        strategy.train(exp)
    alphas = torch.cat([a.flatten() for a in strategy.alpha_params.parameters()])
    assert len(alphas) == sum(p.numel() for p in strategy.model.inner.parameters())
    assert not torch.allclose(alphas, torch.full_like(alphas, 0.1))  # learning rates were meta-learned
    assert len(strategy.buffer) == 20
    assert replay_memory(strategy, scenario.info)["samples"] == 20
    assert any(not torch.equal(initial[k], v) for k, v in strategy.model.inner.state_dict().items())


def test_trainable_view_hides_frozen_parameters():
    from strategies.lamaml import TrainableView

    class TwoLayers(torch.nn.Sequential):
        def forward(self, x, task_labels=None):
            return super().forward(x)

    model = TwoLayers(torch.nn.Linear(2, 3), torch.nn.Linear(3, 2))
    model[0].requires_grad_(False)
    view = TrainableView(model)
    assert [n for n, _ in view.named_parameters()] == ["inner.1.weight", "inner.1.bias"]
    out = torch.func.functional_call(view, {"inner.1.bias": torch.zeros(2)}, (torch.ones(1, 2),))
    assert torch.allclose(out, model[1].weight @ model[0](torch.ones(2)))


# -- modular_lora (strategies/modular_lora.py, strategies/plugins/lora_modules.py) ---------------------
def _trained_modular(setting: str):
    """(strategy, test stream) after both experiences of the tiny stream on the ViT, plus exp0's
    logits on a test batch recorded right after experience 0."""
    from benchmarks.engine.runner import _build

    (spec,) = tiny_specs(["modular_lora"], scenario=f"synthetic_{setting}", model={"name": "vit"})
    scenario, strategy = _build(spec, torch.device("cpu"))
    bench = scenario.benchmark
    x = torch.stack([bench.test_stream[0].dataset[i][0] for i in range(8)])
    strategy.train(bench.train_stream[0])
    model = strategy.model.eval()
    with torch.no_grad():
        first = model.module_logits("exp0", x)
    strategy.train(bench.train_stream[1])
    return strategy, x, first


def test_modular_lora_adds_a_peft_module_per_experience_and_keeps_the_old_one():
    from strategies.plugins.lora_modules import lora_layers

    strategy, x, first = _trained_modular("class_il")
    model = strategy.model.eval()
    layers = lora_layers(model.backbone)
    assert layers and all(set(layer.lora_A) == {"exp0", "exp1"} for layer in layers)
    assert all(layer.lora_B["exp0"].weight.abs().sum() > 0 for layer in layers)  # LoRA B starts at 0: it trained
    assert all(not p.requires_grad for n, p in model.backbone.named_parameters() if "lora_" not in n)
    with torch.no_grad():
        assert torch.equal(model.module_logits("exp0", x), first)  # training exp1 left module 0 as it was
    lora = sum(p.numel() for layer in layers for p in [*layer.lora_A["exp0"].parameters(),
                                                        *layer.lora_B["exp0"].parameters()])
    r, d_in, d_out = 8, layers[0].in_features, layers[0].out_features
    assert lora == len(layers) * r * (d_in + d_out)  # A: r x D_in, B: D_out x r
    d = model.heads["exp0"].in_features
    assert strategy.added_parameters == [lora + 2 * d + 2] * 2  # + a head of 2 classes


def test_modular_lora_routes_by_confidence_without_reading_task_labels():
    strategy, x, _ = _trained_modular("class_il")
    model = strategy.model.eval()
    with torch.no_grad():
        out = model(x, torch.full((len(x),), 7))
        assert torch.equal(out, model(x, None))
        conf = torch.stack([model.module_logits(n, x).softmax(-1).amax(-1) for n in ("exp0", "exp1")])
    shown = (out > -1e3).nonzero()[:, 1].view(len(x), 2)  # the 2 classes of the chosen module
    expected = torch.stack([model.classes[f"exp{int(i)}"] for i in conf.argmax(0)])
    assert torch.equal(shown, expected)


def test_modular_lora_uses_the_task_label_in_task_il():
    strategy, x, _ = _trained_modular("task_il")
    model = strategy.model.eval()
    with torch.no_grad():
        by_task = model(x, torch.ones(len(x), dtype=torch.long))
        assert torch.equal(by_task[:, model.classes["exp1"]], model.module_logits("exp1", x))


def test_modular_lora_evaluation_memo_gives_the_same_matrix_with_fewer_module_passes(monkeypatch):
    from strategies.plugins.module_memo import LogitMemo

    def run(setting: str, memo: bool) -> tuple[list, int]:
        passes = []
        original = LogitMemo.logits if memo else lambda self, name, x, params, compute: compute(x)

        def counting(self, name, x, params, compute):
            return original(self, name, x, params, lambda sub: passes.append(len(sub)) or compute(sub))

        monkeypatch.setattr(LogitMemo, "logits", counting)
        result = _run("modular_lora", setting, model="vit")
        monkeypatch.undo()
        return result["accuracy_matrix"], sum(passes)

    for setting in ("class_il", "task_il"):
        memoised, n_memo = run(setting, memo=True)
        plain, n_plain = run(setting, memo=False)
        assert memoised == plain  # bit-identical accuracy matrix
        if setting == "class_il":  # T = 2, 8 test samples x 4 classes: modules 0, 1 score the test stream
            assert (n_memo, n_plain) == (2 * 32, 3 * 32)  # once each, instead of 1 + 2 passes over it


def test_modular_lora_memo_recomputes_a_module_whose_parameters_changed():
    strategy, x, _ = _trained_modular("class_il")
    model = strategy.model.eval()
    with torch.no_grad():
        before = model(x)
        computed = model.memo.computed
        assert torch.equal(model(x), before) and model.memo.computed == computed  # served from the memo
        model.heads["exp0"].bias[0] += 100.0  # in place (its version counter moves): module 0 sure of class 0
        after = model(x)
    assert model.memo.computed == computed + len(x)  # module 0 scored again, module 1 reused
    assert (after[:, model.classes["exp0"]] > -1e3).all()  # most confident module everywhere now
    with torch.enable_grad():
        assert model.eval_logits("exp1", x).requires_grad  # with gradients: never the memo


def test_modular_lora_on_a_tiny_bert_adapts_query_and_value_of_the_fine_tuned_blocks_only():
    from helpers import tiny_minilm
    from peft import LoraConfig

    from strategies.modular_lora import ModularLoRAParams, _targets
    from strategies.plugins.lora_modules import ModularLoRA, lora_layers

    backbone = tiny_minilm(frozen_layers=1)  # block 0 frozen (cached), block 1 tuned
    assert _targets(backbone, ModularLoRAParams()) == ["query", "value"]
    model = ModularLoRA(backbone, 4, LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"]),
                        route_by_task=False)
    added = model.add_module_for("exp0", torch.tensor([0, 1]), task=0)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all(".layer.1." in n and "lora_" in n or n.startswith("heads.exp0.") for n in names)
    assert backbone.uses_prefix_cache()  # blocks < 1 untouched: their cached states stay exact
    assert len(lora_layers(backbone)) == 2 and added == 2 * 4 * (32 + 32) + 32 * 2 + 2
    x = torch.stack([torch.randint(1, 50, (3, 6)), torch.ones(3, 6, dtype=torch.long)], dim=1)  # (B, 2, L)
    out = model.train()(x)
    assert out.shape == (3, 4) and (out[:, 2:] == -1e4).all()
    out[:, :2].sum().backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)


def test_modular_lora_is_refused_on_a_model_without_transformer_blocks_before_training():
    from benchmarks.core.typed import ConfigError

    with pytest.raises(ConfigError, match="modular_lora.*needs a Transformer"):
        tiny_specs(["modular_lora"], model={"name": "mlp"})


def test_runner_records_the_parameters_added_per_experience():
    from helpers import tiny_specs

    from benchmarks.engine.runner import run_one

    (spec,) = tiny_specs(["modular_lora"], scenario="synthetic_task_il", model={"name": "vit"})
    result = run_one(spec)
    assert result["status"] == "ok", result["error"]
    added = result["added_parameters"]
    assert len(added) == 2 and added[0] > 0 and added[0] == added[1]
    (naive,) = tiny_specs(["naive"])
    assert "added_parameters" not in run_one(naive)
