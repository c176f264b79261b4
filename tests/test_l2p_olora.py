"""L2P (strategies/l2p.py) and O-LoRA (strategies/olora.py): each one's own checks, including ones
that fail if the method does nothing. The registry-wide tests (test_strategies.py, test_fastdata.py)
run them in every setting they declare."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_specs

from benchmarks.engine.runner import _build, run_one


def _accuracies(name: str, setting: str = "class_il", **hparams) -> list[list[float]]:
    (spec,) = tiny_specs([name], scenario=f"synthetic_{setting}", model={"name": "vit"}, hparams={name: hparams})
    result = run_one(spec)
    assert result["status"] == "ok", result["error"]
    return result["accuracy_matrix"]


def _trained(name: str, setting: str = "class_il", **hparams):
    """(strategy, initial state_dict copy) after both experiences of the tiny stream on the ViT."""
    (spec,) = tiny_specs([name], scenario=f"synthetic_{setting}", model={"name": "vit"}, hparams={name: hparams})
    scenario, strategy = _build(spec, torch.device("cpu"))
    initial = {k: v.clone() for k, v in strategy.model.state_dict().items()}
    for exp in scenario.benchmark.train_stream:
        strategy.train(exp)
    return strategy, initial


def _changed(model: torch.nn.Module, initial: dict, prefix: str) -> list[bool]:
    return [k not in initial or not torch.equal(initial[k], v) for k, v in model.state_dict().items()
            if k.startswith(prefix)]  # a key not there before (a new task head) counts as changed


# -- l2p ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("setting", ["class_il", "task_il"])
def test_l2p_trains_prompts_keys_and_head_and_leaves_the_encoder(setting):
    strategy, initial = _trained("l2p", setting)
    model = strategy.model
    assert all(_changed(model, initial, "pool."))  # prompts and keys both moved
    assert any(_changed(model, initial, "backbone.head."))
    encoder = [k for k in initial if k.startswith("backbone.") and not k.startswith("backbone.head.")]
    assert encoder and all(torch.equal(initial[k], model.state_dict()[k]) for k in encoder)
    pool = model.pool
    assert strategy.added_parameters == [pool.prompts.numel() + pool.keys.numel(), 0] == [10 * 5 * 64 + 10 * 64, 0]


def test_l2p_keys_learn_only_from_the_key_query_loss():
    strategy, initial = _trained("l2p", key_weight=0.0)
    assert not any(_changed(strategy.model, initial, "pool.keys"))  # selection has no gradient
    assert all(_changed(strategy.model, initial, "pool.prompts"))


def test_l2p_differs_from_naive_and_from_its_own_ablations():
    l2p = _accuracies("l2p")
    assert l2p != _accuracies("naive")
    assert l2p != _accuracies("l2p", train_mask=False)
    assert l2p != _accuracies("l2p", key_weight=0.0)


def test_prompt_pool_selects_the_keys_closest_to_the_query():
    from strategies.plugins.prompt_pool import PromptPool

    torch.manual_seed(0)
    pool = PromptPool(size=6, length=2, top_n=3, dim=4)
    query = torch.randn(5, 4)
    prompts, cos = pool.select(query)
    full = torch.nn.functional.cosine_similarity(query[:, None], pool.keys[None], dim=-1)  # (B, M)
    best = full.argsort(dim=1, descending=True)[:, :3]
    assert torch.allclose(cos, full.gather(1, best), atol=1e-6)
    assert torch.equal(prompts, pool.prompts[best].flatten(1, 2))  # (B, N * L_p, D)


def test_l2p_output_is_the_head_on_the_mean_of_the_prompt_positions():
    strategy, _ = _trained("l2p")
    model = strategy.model.eval()
    vit = model.backbone
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        prompts, _ = model.pool.select(vit.features(x))
        h = torch.cat([prompts, vit.embed_tokens(x)], 1)
        for block in vit.blocks:
            h = block(h, torch.ones(h.shape[:2], dtype=torch.bool))[0]
        expected = vit.head(vit.norm(h)[:, : prompts.size(1)].mean(1))
        assert torch.allclose(model(x), expected, atol=1e-5)
        model.pool.prompts.zero_()
        assert not torch.allclose(model(x), expected, atol=1e-3)  # the prompts matter


def test_train_mask_hides_the_classes_of_other_experiences_while_training():
    from types import SimpleNamespace

    from strategies.plugins.prompt_pool import KeyQueryLoss, TrainMask

    exp = SimpleNamespace(classes_in_this_experience=[1, 3])
    strategy = SimpleNamespace(mb_output=torch.zeros(2, 4), experience=exp)
    TrainMask().after_forward(strategy)
    assert torch.isinf(strategy.mb_output[:, [0, 2]]).all() and (strategy.mb_output[:, [1, 3]] == 0).all()
    model = SimpleNamespace(match=torch.tensor([[1.0, 0.5], [0.0, 0.5]]))
    strategy = SimpleNamespace(model=model, loss=torch.tensor(1.0))
    KeyQueryLoss(0.5).before_backward(strategy)
    assert strategy.loss.item() == pytest.approx(1.0 + 0.5 * (0.5 + 1.5) / 2) and model.match is None


def test_l2p_on_a_tiny_bert_memoises_queries_and_trains_only_the_pool_and_head():
    from transformers import BertConfig, BertModel

    from benchmarks.core import ScenarioInfo
    from benchmarks.models.minilm import MiniLM, MiniLMParams
    from strategies.plugins.prompt_pool import Prompted, PromptPool

    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=64, attn_implementation="eager"), add_pooling_layer=False)
    info = ScenarioInfo(name="tiny", family="split_text", setting="class_il", n_experiences=2, n_outputs=4,
                        input_shape=(2, 8), modality="text", classes_per_experience=((0, 1), (2, 3)), sample_bytes=16)
    backbone = MiniLM(bert, MiniLMParams(frozen_layers=1), info)
    model = Prompted(backbone, PromptPool(size=4, length=2, top_n=2, dim=32)).train()
    assert backbone.frozen_below == 2  # the whole encoder, whatever frozen_layers said
    ids = torch.randint(1, 50, (3, 8))
    ids[:, 5:] = 0  # padding
    x = torch.stack([ids, (ids != 0).long()], dim=1)  # (B, 2, L)
    model(x).sum().backward()
    trained = {n for n, p in model.named_parameters() if p.grad is not None}
    assert trained == {"pool.prompts", "backbone.head.weight", "backbone.head.bias"}  # keys: only the key loss
    misses = backbone.memo_misses
    model(x)
    assert backbone.memo_misses == misses == 3  # queries come from the frozen-feature memo


# -- olora --------------------------------------------------------------------------------------------
def _olora(setting: str = "class_il", **hparams):
    """(strategy, the adapters plugin, the loss plugin, exp0's adapter weights right after experience 0,
    the model's state before training) after both experiences of the tiny stream on the ViT."""
    from strategies.plugins.lora_modules import lora_layers
    from strategies.plugins.orthogonal_lora import NewLoRAPerExperience, OrthogonalLoRALoss, new_parameters

    (spec,) = tiny_specs(["olora"], scenario=f"synthetic_{setting}", model={"name": "vit"}, hparams={"olora": hparams})
    scenario, strategy = _build(spec, torch.device("cpu"))
    initial = {k: v.clone() for k, v in strategy.model.state_dict().items()}
    adapters = next(p for p in strategy.plugins if isinstance(p, NewLoRAPerExperience))
    loss = next(p for p in strategy.plugins if isinstance(p, OrthogonalLoRALoss))
    strategy.train(scenario.benchmark.train_stream[0])
    assert loss.last_orthogonality == 0.0  # one adapter: nothing to be orthogonal to
    first = [p.detach().clone() for layer in lora_layers(strategy.model) for p in new_parameters(layer, "exp0")]
    strategy.train(scenario.benchmark.train_stream[1])
    return strategy, adapters, loss, first, initial


@pytest.mark.parametrize("setting", ["class_il", "task_il"])
def test_olora_adds_an_adapter_per_experience_and_keeps_the_old_ones_bit_identical(setting):
    from strategies.plugins.lora_modules import lora_layers
    from strategies.plugins.orthogonal_lora import new_parameters

    strategy, _, loss, first, initial = _olora(setting)
    model = strategy.model
    layers = lora_layers(model)
    assert layers and all(set(layer.lora_A) == {"exp0", "exp1"} for layer in layers)
    assert all(sorted(layer.active_adapters) == ["exp0", "exp1"] for layer in layers)  # both always on
    after = [p for layer in layers for p in new_parameters(layer, "exp0")]
    assert all(torch.equal(a, b) for a, b in zip(first, after))  # training exp1 left exp0 as it was
    assert all(layer.lora_B["exp1"].weight.abs().sum() > 0 for layer in layers)  # B starts at 0: it trained
    assert loss.last_orthogonality > 0
    now = {k.replace("base_layer.", ""): v for k, v in model.state_dict().items()}  # peft wraps the Linear
    base = [k for k in initial if not k.startswith("head.")]
    assert base and all(torch.equal(initial[k], now[k]) for k in base)  # pretrained weights frozen
    r, d_in, d_out = 8, layers[0].in_features, layers[0].out_features
    assert strategy.added_parameters == [len(layers) * r * (d_in + d_out)] * 2


def test_olora_output_sums_every_adapter():
    from strategies.plugins.lora_modules import lora_layers

    strategy, *_ = _olora()
    model = strategy.model.eval()
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        both = model(x)
        for layer in lora_layers(model):
            layer.set_adapter(["exp0"])
        assert not torch.allclose(model(x), both, atol=1e-5)


def test_orthogonality_is_the_overlap_of_old_and_new_down_projections():
    from peft import LoraConfig

    from strategies.plugins.orthogonal_lora import NewLoRAPerExperience, orthogonality

    torch.manual_seed(0)
    block = torch.nn.Module()
    block.qkv = torch.nn.Linear(6, 6)
    model = torch.nn.Module()
    model.blocks = torch.nn.ModuleList([block])
    adapters = NewLoRAPerExperience(LoraConfig(r=2, lora_alpha=4, target_modules=["qkv"]))
    assert adapters.add(model, "exp0") == 2 * 6 + 6 * 2
    adapters.add(model, "exp1")
    a0, a1 = block.qkv.lora_A["exp0"].weight, block.qkv.lora_A["exp1"].weight  # (2, 6) each
    assert not a0.requires_grad and a1.requires_grad
    assert orthogonality(model, adapters.names, "squared").item() == pytest.approx(((a0 @ a1.T) ** 2).sum().item())
    assert orthogonality(model, adapters.names).item() == pytest.approx((a0 @ a1.T).abs().sum().item())
    with torch.no_grad():
        a0.copy_(torch.eye(6)[:2])
        a1.copy_(torch.eye(6)[2:4])
    assert orthogonality(model, adapters.names).item() == 0.0


def test_olora_loss_makes_the_new_adapter_more_orthogonal():
    from strategies.plugins.orthogonal_lora import orthogonality

    strong, adapters, *_ = _olora(lambda_1=50.0)
    free, free_adapters, *_ = _olora(lambda_1=0.0)
    assert orthogonality(strong.model, adapters.names) < orthogonality(free.model, free_adapters.names)
    assert _accuracies("olora") != _accuracies("naive")
