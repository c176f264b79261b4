"""First-experience adaptation: seq_star (SEQ*) and aper_lora (APER with a peft LoRA adapter).

Each one's own checks, including ones that fail if the method does nothing; the registry-wide tests
(test_strategies.py, test_fastdata.py) run them in every setting they declare.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from helpers import tiny_doc, tiny_minilm

from benchmarks.config.loader import expand
from benchmarks.engine.runner import _build, run_one


def _spec(name: str, setting: str = "class_il", train: dict | None = None, **hparams):
    doc = tiny_doc([name], scenario=f"synthetic_{setting}")
    doc["scenarios"][f"synthetic_{setting}"]["model"] = {"name": "vit"}
    doc["train"].update(train or {})
    doc["hparams"] = {name: hparams}
    (spec,) = expand(doc, name="tiny", where="test")
    return spec


def _states(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _trained(name: str, setting: str = "class_il", train: dict | None = None, **hparams):
    """(scenario, strategy, [state before, after experience 0, after experience 1])."""
    scenario, strategy = _build(_spec(name, setting, train, **hparams), torch.device("cpu"))
    states = [_states(strategy.model)]
    for exp in scenario.benchmark.train_stream:
        strategy.train(exp)
        states.append(_states(strategy.model))
    return scenario, strategy, states


def _same(a: dict, b: dict, keep) -> bool:
    keys = [k for k in a if keep(k)]
    assert keys
    return all(torch.equal(a[k], b[k]) for k in keys)


def _encoder(key: str) -> bool:
    return key.startswith("backbone.")


def _data(dataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    items = [dataset[i] for i in range(len(dataset))]
    return tuple(torch.stack([torch.as_tensor(item[j]) for item in items]) for j in range(3))


def _poisoned_test_stream():
    """Another stream's test data: other inputs (noise 3) for the same labels."""
    from benchmarks.scenarios import SCENARIOS, build_scenario

    params = SCENARIOS.get("synthetic_class_il").params(noise=3.0)
    return build_scenario("synthetic_class_il", params, seed=123).benchmark.test_stream


@pytest.fixture(scope="module")
def seq_class_il():
    return _trained("seq_star")


@pytest.fixture(scope="module")
def aper_class_il():
    return _trained("aper_lora")


# -- seq_star -----------------------------------------------------------------------------------------
def test_seq_star_fine_tunes_the_encoder_on_experience_1_only(seq_class_il):
    _, strategy, (before, after_0, after_1) = seq_class_il
    assert not _same(before, after_0, _encoder)  # the warm-up trained the encoder (not a frozen probe)
    assert _same(after_0, after_1, _encoder)  # then bit-identical
    assert all(not p.requires_grad for p in strategy.model.backbone.parameters())
    # experience 0: 3 warm-up epochs + train.epochs (1), experience 1: 1 epoch; 2 batches of 16 each
    assert strategy.clock.train_iterations == (3 + 1) * 2 + 1 * 2 and strategy.train_epochs == 1


def test_seq_star_keeps_old_rows_and_trains_new_ones(seq_class_il):
    _, _, (_, after_0, after_1) = seq_class_il
    w0, w1 = after_0["head.weight"], after_1["head.weight"]
    assert torch.equal(w0[:2], w1[:2])  # classes 0, 1 of experience 0: fixed
    assert not torch.equal(w0[2], w1[2]) and not torch.equal(w0[3], w1[3])


def test_seq_star_without_warm_up_is_the_frozen_encoder_probe():
    _, _, (before, after_0, after_1) = _trained("seq_star", warmup_epochs=0)
    assert _same(before, after_0, _encoder) and _same(before, after_1, _encoder)
    assert not torch.equal(before["head.weight"], after_1["head.weight"])


def test_seq_star_task_il_rows_per_task_and_each_task_learned():
    spec = _spec("seq_star", "task_il", train={"epochs": 5, "lr": 0.05})
    result = run_one(spec)
    assert result["status"] == "ok", result["error"]
    R = result["accuracy_matrix"]
    assert R[0][0] >= 0.75 and R[1][1] >= 0.75  # chance: 0.5 (2 classes per task)
    assert R[1][0] == R[0][0]  # task 0's rows and the encoder are frozen: nothing to forget
    assert result["replay_memory"]["samples"] == 0 and result["extra_state"]["bytes"] == 0


def test_seq_star_class_il_learns_the_new_experience():
    # the new rows must beat the fixed old ones; on the random tiny ViT that needs a scaled cosine and
    # rows of unseen classes kept out of the first experience's loss (scale 1 + pre-allocation: see the docs)
    spec = _spec("seq_star", train={"epochs": 5, "lr": 0.01}, warmup_epochs=0, scale=16.0, preallocate=False)
    result = run_one(spec)
    assert result["status"] == "ok", result["error"]
    R = result["accuracy_matrix"]
    assert R[0][0] >= 0.75 and R[1][1] >= 0.75  # chance: 0.25 (4 classes)


def test_seq_star_without_preallocation_hides_unseen_rows_while_training():
    from strategies.plugins.cosine_head import CosineHead
    from strategies.plugins.first_experience import SeqStarSchedule

    head = CosineHead(8, 4, 2, per_task=False, scale=1.0, learn_scale=False)
    plugin = SeqStarSchedule(torch.nn.Linear(1, 1), head, warmup_epochs=0, preallocate=False)
    plugin._seen = [0, 1]
    strategy = SimpleNamespace(mb_output=torch.zeros(3, 4))
    plugin.after_forward(strategy)
    assert torch.isinf(strategy.mb_output[:, 2:]).all() and (strategy.mb_output[:, :2] == 0).all()
    strategy = SimpleNamespace(mb_output=torch.zeros(3, 4))
    SeqStarSchedule(torch.nn.Linear(1, 1), head, 0, preallocate=True).after_forward(strategy)
    assert (strategy.mb_output == 0).all()


def test_seq_star_refuses_an_encoder_with_nothing_to_fine_tune():
    from benchmarks.engine.evaluation import make_evaluator
    from strategies import STRATEGIES, StrategyContext, StrategyNotApplicable, TrainConfig

    entry = STRATEGIES.get("seq_star")

    def build(frozen_layers: int, **params):
        model = tiny_minilm(frozen_layers)
        ctx = StrategyContext(model=model, info=model_info(), train=TrainConfig(), device=torch.device("cpu"),
                              evaluator=make_evaluator())
        return entry.builder(ctx, entry.params(**params))

    with pytest.raises(StrategyNotApplicable, match="frozen_layers.*warmup_epochs = 0"):
        build(2)  # the tiny BERT has 2 blocks: frozen_layers = 2 freezes all of it
    assert build(2, warmup_epochs=0) is not None  # the frozen-encoder probe applies
    assert build(1) is not None


def model_info():
    from benchmarks.core import ScenarioInfo

    return ScenarioInfo(name="tiny", family="split_text", setting="class_il", n_experiences=2, n_outputs=4,
                        input_shape=(2, 6), modality="text", classes_per_experience=((0, 1), (2, 3)), sample_bytes=96)


# -- aper_lora ----------------------------------------------------------------------------------------
def test_aper_adapts_on_experience_1_only_and_never_touches_the_pretrained_weights(aper_class_il):
    _, _, (before, after_0, after_1) = aper_class_il
    lora = lambda k: "lora_" in k
    pretrained = lambda k: k.startswith("backbone.") and "lora_" not in k
    assert not _same(before, after_0, lambda k: "lora_B" in k)  # the adapter learned (B starts at 0)
    assert _same(after_0, after_1, lora)
    assert _same(before, after_0, pretrained) and _same(before, after_1, pretrained)
    assert _same(after_0, after_1, lambda k: k.startswith("head."))  # no training epoch after experience 0


def test_aper_prototypes_are_the_class_means_of_the_training_data(aper_class_il):
    scenario, strategy, _ = aper_class_il
    model, store = strategy.model.eval(), strategy.plugins[0]
    with torch.no_grad():
        for exp in scenario.benchmark.train_stream:
            x, y, _ = _data(exp.dataset)
            feats = model.dual_features(x)
            for c in torch.unique(y).tolist():
                mean = feats[y == c].mean(0)
                assert store.counts[c] == (y == c).sum()
                assert torch.allclose(store.sums[c] / store.counts[c], mean, atol=1e-5)


def test_aper_branches_are_the_frozen_backbone_with_the_adapter_off_and_on(aper_class_il):
    scenario, strategy, _ = aper_class_il
    model = strategy.model.eval()
    zero = copy.deepcopy(model.backbone)  # the same frozen backbone without the method's part
    for name, p in zero.named_parameters():
        if "lora_B" in name:
            p.data.zero_()
    x, _, _ = _data(scenario.benchmark.test_stream[1].dataset)
    with torch.no_grad():
        dual, plain = model.dual_features(x), zero.features(x)
    dim = plain.size(1)
    assert torch.allclose(dual[:, :dim], plain, atol=1e-6)
    assert not torch.allclose(dual[:, dim:], plain, atol=1e-3)  # the adapted branch differs
    assert not any(p.requires_grad for p in model.adapter_parameters())  # frozen flags kept by adapter_off


def test_a_poisoned_test_stream_changes_no_stored_state(aper_class_il, seq_class_il):
    for _, strategy, states in (aper_class_il, seq_class_il):
        store = getattr(strategy.model, "prototypes", None)  # aper_lora's; seq_star keeps only the model
        kept = None if store is None else (store.sums.clone(), store.counts.clone())
        strategy.eval(_poisoned_test_stream())
        assert _same(states[-1], _states(strategy.model), lambda k: True)
        if kept is not None:
            assert torch.equal(kept[0], store.sums) and torch.equal(kept[1], store.counts)


def test_aper_learns_each_experience_and_reports_its_state():
    result = run_one(_spec("aper_lora"))
    assert result["status"] == "ok", result["error"]
    R = result["accuracy_matrix"]
    assert R[0][0] >= 0.75 and R[1][1] >= 0.75 and R[1][0] >= 0.75  # chance: 0.25
    rows, dim = 4, 2 * 64  # 4 classes; [pretrained, adapted] features of the tiny ViT (D = 64)
    assert result["extra_state"] == {"parameters": rows * dim + rows, "bytes": 4 * (rows * dim + rows)}
    assert result["added_parameters"] == [2 * (8 * 64 + 3 * 64 * 8), 0]  # rank 8 on qkv (64 -> 192), 2 blocks
    assert result["replay_memory"]["samples"] == 0


def test_aper_domain_il_prototype_is_the_mean_over_every_experience():
    scenario, strategy, _ = _trained("aper_lora", "domain_il")
    store = strategy.plugins[0]
    assert store.counts.tolist() == [32.0, 32.0]  # 16 training samples per class in each of 2 experiences
    x = torch.cat([_data(e.dataset)[0] for e in scenario.benchmark.train_stream])
    y = torch.cat([_data(e.dataset)[1] for e in scenario.benchmark.train_stream])
    with torch.no_grad():
        feats = strategy.model.eval().dual_features(x)
    assert torch.allclose(store.sums[1] / 32, feats[y == 1].mean(0), atol=1e-5)
