"""Fixes of issue 22's review (docs/review_fixes.md): each test here fails on the code before the fix."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_context, tiny_minilm, tiny_specs, tiny_text_stream

from benchmarks.engine.runner import _build
from strategies import STRATEGIES


# -- 1. moe_adapters with the whole encoder frozen ------------------------------------------------------
def _moe_on_frozen_tiny_bert(**hparams):
    """moe_adapters on a 2-block BERT with both blocks frozen (MiniLM's default ``frozen_layers = 6``)."""
    entry = STRATEGIES.get("moe_adapters")
    model = tiny_minilm(frozen_layers=2)
    strategy = entry.builder(tiny_context(model), entry.params(experts=4, top_k=2, rank=2, selector_dims=4, **hparams))
    return strategy, tiny_text_stream()


def test_moe_adapters_on_a_fully_frozen_encoder_trains_routes_and_selects():
    strategy, bench = _moe_on_frozen_tiny_bert()
    routing = strategy.plugins[0]
    assert not any(b.training for b in strategy.model.blocks[:2])  # frozen blocks stay in eval mode
    for exp in bench.train_stream:  # before the fix: torch.cat of an empty list after the first experience
        strategy.train(exp)
        strategy.eval(bench.test_stream)
    assert routing.selector.fitted == 2  # the selector saw each experience's training features
    for m in routing.mixtures:  # both blocks adapted; each experience's router picked experts while training
        assert len(m.frozen) >= 2 and m.routers[0].w_gate.abs().sum() > 0 and m.routers[1].w_gate.abs().sum() > 0
    assert strategy.routing["owned"] and len(strategy.routing["owned"]) == 2


def test_moe_router_noise_follows_the_model_mode_not_the_frozen_block_mode():
    strategy, bench = _moe_on_frozen_tiny_bert()
    model, (mixture, _) = strategy.model, strategy.plugins[0].mixtures
    mixture.routing.current = 0
    x = torch.stack([bench.train_stream[0].dataset[i][0] for i in range(6)])
    model.train()
    model(x)
    first = mixture.gates.clone()
    model(x)
    assert not torch.equal(first, mixture.gates)  # noisy top-k while the model trains
    assert mixture.counts.sum() == 2 * 6 * 2  # 2 forwards x 6 samples x top-2 counted
    model.eval()
    model(x)
    again = mixture.gates.clone()
    model(x)
    assert torch.equal(again, mixture.gates)  # no noise in evaluation


# -- 2. olora: the authors' orthogonality norm --------------------------------------------------------
def _two_adapters(d_in: int, r: int):
    """A one-Linear model with O-LoRA adapters exp0 (old, frozen) and exp1 (new), peft's initialisation."""
    from peft import LoraConfig

    from strategies.plugins.orthogonal_lora import NewLoRAPerExperience

    torch.manual_seed(0)
    block = torch.nn.Module()
    block.qkv = torch.nn.Linear(d_in, d_in)
    model = torch.nn.Module()
    model.blocks = torch.nn.ModuleList([block])
    adapters = NewLoRAPerExperience(LoraConfig(r=r, lora_alpha=4 * r, target_modules=["qkv"]))
    adapters.add(model, "exp0")
    adapters.add(model, "exp1")
    return model, adapters, block.qkv.lora_A["exp0"].weight, block.qkv.lora_A["exp1"].weight


def test_olora_default_orthogonality_is_the_authors_sum_of_absolute_overlaps():
    from strategies.olora import OLoRAParams
    from strategies.plugins.orthogonal_lora import orthogonality

    model, adapters, a0, a1 = _two_adapters(3, 2)
    with torch.no_grad():
        a0.copy_(torch.tensor([[1.0, 2.0, 0.0], [0.0, -1.0, 1.0]]))
        a1.copy_(torch.tensor([[1.0, 0.0, 1.0], [2.0, 1.0, -1.0]]))
    # A0 A1^T = [[1, 4], [1, -2]] by hand: sum |.| = 8, sum (.)^2 = 22
    assert OLoRAParams().orthogonality_norm == "abs"
    assert orthogonality(model, adapters.names).item() == 8.0
    assert orthogonality(model, adapters.names, "squared").item() == 22.0


def test_olora_gradient_at_the_default_lambda_pulls_toward_orthogonality_with_weight():
    from strategies.olora import OLoRAParams
    from strategies.plugins.orthogonal_lora import orthogonality

    p = OLoRAParams()
    model, adapters, a0, a1 = _two_adapters(384, p.rank)  # MiniLM's width, O-LoRA's rank, peft's init
    (grad,) = torch.autograd.grad(p.lambda_1 * orthogonality(model, adapters.names, p.orthogonality_norm), a1)
    overlap = (a0 @ a1.T).abs().sum()
    with torch.no_grad():
        assert (a0 @ (a1 - 1e-3 * grad).T).abs().sum() < overlap  # a step along -grad: more orthogonal
    # LoRA's B starts at 0, so at an experience's start this is the only gradient on A_t: it must move A_t
    # at the scale of A_t itself (the squared norm's gradient is 0.047 ||A_t||: ~30x weaker)
    assert grad.norm() > 0.5 * a1.norm()


# -- 4. coreset replay: per class, normalised features, replay's byte rule --------------------------------
def _coreset(name: str, setting: str, **hparams):
    (spec,) = tiny_specs([name], scenario=f"synthetic_{setting}", hparams={name: hparams})
    scenario, strategy = _build(spec, torch.device("cpu"))
    return scenario, strategy, strategy.plugins[0].storage_policy


@pytest.mark.parametrize("name", ["replay_herding", "replay_centroid"])
@pytest.mark.parametrize("setting", ["task_il", "domain_il"])
def test_coreset_selects_per_class_inside_an_experience_group(name, setting):
    scenario, strategy, policy = _coreset(name, setting, mem_size=8)
    bench = scenario.benchmark
    strategy.train(bench.train_stream[0])
    (group,) = policy.buffer_groups.values()  # task-/domain-IL: one group per experience, two classes each
    assert sorted(torch.as_tensor(list(group.buffer.targets)).bincount().tolist()) == [4, 4]
    strategy.train(bench.train_stream[1])
    for group in policy.buffer_groups.values():
        assert torch.as_tensor(list(group.buffer.targets)).bincount().tolist() == [2, 2]


@pytest.mark.parametrize("name", ["replay_herding", "replay_centroid"])
def test_coreset_selection_uses_l2_normalised_features(name):
    scenario, strategy, policy = _coreset(name, "class_il", mem_size=8)
    data = scenario.benchmark.train_stream[0].dataset
    strategy.experience = scenario.benchmark.train_stream[0]
    before = policy.selection_strategy.make_sorted_indices(strategy, data)
    model, features = strategy.model, strategy.model.features
    # rescale each sample's feature vector by a positive factor: the normalised features do not change
    model.features = lambda x: features(x) * (1.0 + 50.0 * x.flatten(1)[:, :5].abs().sum(1, keepdim=True))
    assert list(policy.selection_strategy.make_sorted_indices(strategy, data)) == list(before)


@pytest.mark.parametrize("setting", ["class_il", "task_il", "domain_il"])
def test_coreset_stores_what_replay_stores_at_the_same_budget(setting):
    from benchmarks.engine.memory import replay_memory

    # 10 synthetic samples of 3136 B (784 float32) hold 9 records of 3136 + 1-2 label/task-id bytes
    for budget, samples in (({"mem_size": 10}, 10), ({"mem_size": 4400, "mem_bytes": 10 * 3136}, 9)):
        memory = {}
        for name in ("replay", "replay_herding", "replay_centroid"):
            scenario, strategy, _ = _coreset(name, setting, **budget)
            for exp in scenario.benchmark.train_stream:
                strategy.train(exp)
            memory[name] = replay_memory(strategy, scenario.info)
        assert memory["replay_herding"] == memory["replay"] == memory["replay_centroid"], memory
        assert memory["replay"]["samples"] == samples


# -- 5. lamaml: the paper's settings; its buffer enters the meta-loss -------------------------------------
def test_lamaml_defaults_are_the_papers_mnist_settings():
    from strategies.lamaml import LaMAMLParams

    p = LaMAMLParams()  # montrealrobotics/La-MAML run_experiments.sh (La-MAML, MNIST) and parser.py
    assert (p.alpha_init, p.lr_alpha, p.grad_clip_norm, p.mem_size, p.buffer_mb_size) == (0.15, 0.3, 2.0, 200, 10)


def test_lamaml_buffer_changes_the_meta_gradient():
    (spec,) = tiny_specs(["lamaml"])
    scenario, strategy = _build(spec, torch.device("cpu"))
    bench = scenario.benchmark
    strategy.train(bench.train_stream[0])  # fills the reservoir buffer
    assert len(strategy.buffer) > 0
    strategy.experience = bench.train_stream[1]
    data = bench.train_stream[1].dataset
    strategy.mbatch = [torch.stack([data[i][j] if j == 0 else torch.tensor(data[i][j]) for i in range(8)])
                       for j in range(3)]

    def meta_gradient(counter: int) -> list[torch.Tensor]:
        strategy.clock.train_exp_counter = counter  # 0: the first experience's path, no buffer batch
        torch.manual_seed(0)
        strategy._inner_updates()
        meta_loss = sum(strategy.meta_losses) / len(strategy.meta_losses)
        return torch.autograd.grad(meta_loss, list(strategy.initial_fast_params.values()), allow_unused=True)

    with_buffer, without = meta_gradient(1), meta_gradient(0)
    diff = sum(float((a - b).abs().sum()) for a, b in zip(with_buffer, without) if a is not None and b is not None)
    assert diff > 1e-3 * sum(float(a.abs().sum()) for a in with_buffer if a is not None)


# -- 6. every regulariser's penalty pulls toward its anchor ------------------------------------------------
VIT = {"name": "vit"}
PARAMETER_REGULARISERS = ["ewc", "online_ewc", "si", "mas", "l2", "l1",
                          "ewc_avalanche", "online_ewc_avalanche", "si_avalanche", "mas_avalanche"]
OUTPUT_REGULARISERS = {"lwf": None, "attn_reg": VIT}


class _Stop(Exception):
    """Raised by _PenaltyGradient once the first step's gradient is read."""


class _PenaltyGradient:
    """A plugin that moves the parameters off the anchor before an experience, reads the first step's
    gradients (task loss zeroed: the penalty's alone) and stops; ``flip`` negates them first, as a penalty
    of the wrong sign would give."""

    def __init__(self, flip: bool) -> None:
        self.flip, self.grads, self.x = flip, {}, None

    def __getattr__(self, name):  # every other plugin event: nothing
        if name.startswith(("before_", "after_")):
            return lambda *a, **k: None
        raise AttributeError(name)

    def before_training_exp(self, strategy, **kwargs) -> None:
        """After every other plugin's (Avalanche's SI takes its anchor here): move off the anchor."""
        torch.manual_seed(1)
        with torch.no_grad():
            for p in strategy.model.parameters():
                if p.requires_grad:
                    p.add_(0.05 * torch.randn_like(p))

    def before_update(self, strategy, **kwargs) -> None:
        for n, p in strategy.model.named_parameters():
            if p.requires_grad:
                g = torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()
                self.grads[n] = -g if self.flip else g
        self.x = strategy.mb_x.detach()
        raise _Stop


def _penalty_gradient(name: str, model: dict | None, flip: bool):
    """(strategy, anchor model, penalty gradient, batch): train experience 0, move the parameters off
    the anchor, then read the gradient of the penalty alone at experience 1's first step."""
    import copy

    (spec,) = tiny_specs([name], **({"model": model} if model else {}))
    scenario, strategy = _build(spec, torch.device("cpu"))
    bench = scenario.benchmark
    strategy.train(bench.train_stream[0])
    anchor = copy.deepcopy(strategy.model)
    strategy._criterion = lambda out, y: 0.0 * out.sum() + 1.0  # no gradient (non-zero: MAS checks)
    reader = _PenaltyGradient(flip)
    strategy.plugins.append(reader)
    with pytest.raises(_Stop):
        strategy.train(bench.train_stream[1])
    return strategy, anchor, reader.grads, reader.x


def _descent(grads: dict, direction: dict) -> float:
    """<g, d> in float64: > 0 when a small step along -g decreases a distance whose gradient is d."""
    return sum(float((grads[n].double() * direction[n].double()).sum()) for n in grads if n in direction)


@pytest.mark.parametrize("flip", [False, True], ids=["penalty", "wrong_sign"])
@pytest.mark.parametrize("name", PARAMETER_REGULARISERS)
def test_parameter_penalty_pulls_toward_the_anchor(name, flip):
    strategy, anchor, grads, _ = _penalty_gradient(name, None, flip)
    old = dict(anchor.named_parameters())
    # d/dtheta of ||theta - theta*||^2 / 2 = theta - theta*
    offset = {n: p.detach() - old[n].detach() for n, p in strategy.model.named_parameters() if n in grads}
    assert any(g.abs().sum() > 0 for g in grads.values()), "the penalty has no gradient"
    assert (_descent(grads, offset) > 0) != flip


def _output_distance(name: str, model, anchor, x: torch.Tensor) -> torch.Tensor:
    """LwF: KL(old || new) of softmax outputs over experience 0's classes; attn_reg: squared distance of
    every block's attention maps."""
    if name == "lwf":
        with torch.no_grad():
            old = anchor(x)[:, :2].softmax(1)
        return torch.nn.functional.kl_div(model(x)[:, :2].log_softmax(1), old, reduction="batchmean")
    with torch.no_grad():
        old = anchor.encode(x, output_attentions=True).attentions
    new = model.encode(x, output_attentions=True).attentions
    return sum((a - b).pow(2).sum() for a, b in zip(new, old, strict=True))


@pytest.mark.parametrize("flip", [False, True], ids=["penalty", "wrong_sign"])
@pytest.mark.parametrize("name", list(OUTPUT_REGULARISERS))
def test_output_penalty_pulls_toward_the_old_outputs(name, flip):
    strategy, anchor, grads, x = _penalty_gradient(name, OUTPUT_REGULARISERS[name], flip)
    model = strategy.model.eval()
    anchor.eval()
    distance = _output_distance(name, model, anchor, x)
    assert distance > 0
    names = [n for n, p in model.named_parameters() if n in grads]
    d = torch.autograd.grad(distance, [dict(model.named_parameters())[n] for n in names], allow_unused=True)
    direction = {n: g for n, g in zip(names, d, strict=True) if g is not None}
    assert any(g.abs().sum() > 0 for g in grads.values()), "the penalty has no gradient"
    assert (_descent(grads, direction) > 0) != flip


# -- 7. frozen-backbone methods: their own part has an effect ---------------------------------------------
def _trained(name: str, **hparams):
    """(strategy, test batch x, task labels, state before training): ``name`` trained on both experiences
    of the synthetic stream on the ViT."""
    (spec,) = tiny_specs([name], model=VIT, hparams={name: hparams})
    scenario, strategy = _build(spec, torch.device("cpu"))
    initial = {k: v.detach().clone() for k, v in strategy.model.state_dict().items()}
    for exp in scenario.benchmark.train_stream:
        strategy.train(exp)
    test = scenario.benchmark.test_stream
    items = [test[j].dataset[i] for j in range(2) for i in range(8)]
    x, t = torch.stack([it[0] for it in items]), torch.tensor([int(it[2]) for it in items])
    return strategy, x, t, initial


def _logits(model, x, t) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x, t).clone()


def _zero_lora_b(model, names=None) -> None:
    """Every LoRA adapter's up-projection (or the named adapters') at zero: the update B A x vanishes."""
    from strategies.plugins.lora_modules import lora_layers

    with torch.no_grad():
        for layer in lora_layers(model):
            for name, module in layer.lora_B.items():
                if names is None or name in names:
                    module.weight.zero_()


@pytest.mark.parametrize("name", ["modular_lora", "olora", "moe_adapters"])
def test_adapter_methods_differ_from_the_same_frozen_backbone_with_adapters_at_zero(name):
    strategy, x, t, _ = _trained(name)
    trained = _logits(strategy.model, x, t)
    assert torch.equal(trained, _logits(strategy.model, x, t))  # evaluation is deterministic
    _zero_lora_b(strategy.model)
    assert not torch.allclose(trained, _logits(strategy.model, x, t), atol=1e-4)


def test_olora_newest_adapter_has_an_effect_of_its_own():
    strategy, x, t, _ = _trained("olora")
    trained = _logits(strategy.model, x, t)
    _zero_lora_b(strategy.model, names={"exp1"})
    assert not torch.allclose(trained, _logits(strategy.model, x, t), atol=1e-4)


def test_moe_adapters_routers_have_an_effect_compared_with_a_fixed_router():
    strategy, x, t, _ = _trained("moe_adapters")
    trained = _logits(strategy.model, x, t)
    with torch.no_grad():  # zero gate weights: every sample gets the same k experts with equal weights
        for m in strategy.plugins[0].mixtures:
            for router in m.routers:
                router.w_gate.zero_()
    assert not torch.allclose(trained, _logits(strategy.model, x, t), atol=1e-4)


def test_l2p_learned_prompts_have_an_effect_compared_with_their_initialisation():
    strategy, x, t, initial = _trained("l2p")
    trained = _logits(strategy.model, x, t)
    with torch.no_grad():
        strategy.model.pool.prompts.copy_(initial["pool.prompts"])  # the prompt pool's training undone
    assert not torch.allclose(trained, _logits(strategy.model, x, t), atol=1e-4)


@pytest.mark.parametrize("store", ["tokens", "pooled"])
def test_feature_replay_differs_from_the_same_freezing_schedule_without_replay(store, monkeypatch):
    from strategies.plugins.feature_replay import FeatureReplayPlugin

    def final_logits() -> torch.Tensor:
        strategy, x, t, _ = _trained("feature_replay", store=store)
        return _logits(strategy.model, x, t)

    runs = [final_logits() for _ in range(2)]
    assert torch.equal(*runs)  # the comparison below is not run-to-run noise
    monkeypatch.setattr(FeatureReplayPlugin, "replay_loss", lambda self, model, n: torch.zeros(()))
    assert not torch.allclose(runs[0], final_logits(), atol=1e-4)


# -- 3. moe_adapters, olora in class-IL: a head that cannot forget ----------------------------------------
@pytest.mark.parametrize("name", ["moe_adapters", "olora"])
@pytest.mark.parametrize("head", ["linear", "frozen_rows"])
def test_frozen_row_head_keeps_the_first_experience_rows_bit_identical(name, head):
    (spec,) = tiny_specs([name], model=VIT, hparams={name: {"head": head}})
    scenario, strategy = _build(spec, torch.device("cpu"))
    bench, w = scenario.benchmark, strategy.model.head.weight
    strategy.train(bench.train_stream[0])
    first = w.detach().clone()
    strategy.train(bench.train_stream[1])
    old, new = list(bench.train_stream[0].classes_in_this_experience), list(bench.train_stream[1].classes_in_this_experience)
    assert not torch.equal(w[new], first[new])  # the current experience's rows train
    assert torch.equal(w[old], first[old]) == (head == "frozen_rows")  # the old rows: frozen or forgetting


@pytest.mark.parametrize("name", ["moe_adapters", "olora"])
def test_frozen_row_head_is_refused_outside_class_il_before_training(name):
    from strategies import StrategyNotApplicable

    (spec,) = tiny_specs([name], scenario="synthetic_task_il", model=VIT, hparams={name: {"head": "frozen_rows"}})
    with pytest.raises(StrategyNotApplicable, match="class_il only"):
        _build(spec, torch.device("cpu"))
