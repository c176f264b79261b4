"""Hsu et al. 2018's protocol options: seen-class loss, 32x32 padding, split rehearsal memory, GEM, Adagrad."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch
from avalanche.training.plugins import SupervisedPlugin
from helpers import tiny_specs

from benchmarks.config.loader import load_suite
from benchmarks.config.preflight import preflight
from benchmarks.engine.runner import _build, run_one
from benchmarks.scenarios import SCENARIOS, build_scenario, split_mnist
from strategies import StrategyContext, TrainConfig
from strategies.plugins.rehearsal import ConcatRehearsalPlugin, SplitMemoryGEMPlugin, TaskSplitMemory
from strategies.plugins.seen_classes import SeenClassesLoss

CPU = torch.device("cpu")


def _spec(strategy="naive", seen=True, hparams=None):
    """One tiny synthetic class-IL run (4 classes, 2 experiences, 16 training samples per class)."""
    (spec,) = tiny_specs([strategy], loss_on_seen_classes=seen, hparams={strategy: hparams or {}})
    return spec


def _head(strategy) -> torch.nn.Linear:
    return strategy.model.head


class _TrainSizes(SupervisedPlugin):
    """Records the size of the training set of each experience (the strategy clears it afterwards)."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.sizes.append(len(strategy.adapted_dataset))


def _train_all(strategy, scenario) -> list[int]:
    spy = _TrainSizes()
    strategy.plugins.append(spy)
    for exp in scenario.benchmark.train_stream:
        strategy.train(exp)
    return spy.sizes


# -- loss over the classes seen so far -------------------------------------------------------------
def test_seen_loss_is_hsu_slice_in_training_and_full_loss_in_evaluation():
    loss = SeenClassesLoss()
    logits, y = torch.randn(6, 10), torch.tensor([0, 1, 2, 3, 1, 0])
    loss.add_classes([0, 1])
    loss.add_classes([3, 2])
    loss.active = True
    ce = torch.nn.functional.cross_entropy
    assert loss(logits, y) == pytest.approx(ce(logits[:, :4], y).item())  # their pred[:, :valid_out_dim]
    loss.before_eval(None)
    assert loss(logits, y) == pytest.approx(ce(logits, y).item())
    loss.after_eval(None)
    assert loss.active


def test_seen_loss_reindexes_classes_of_any_order():
    loss = SeenClassesLoss()
    loss.add_classes([7, 2])
    loss.active = True
    logits, y = torch.randn(4, 10), torch.tensor([2, 7, 7, 2])
    expected = torch.nn.functional.cross_entropy(logits[:, [2, 7]], torch.tensor([0, 1, 1, 0]))
    assert loss(logits, y) == pytest.approx(expected.item())
    with pytest.raises((IndexError, RuntimeError)):
        loss(logits, torch.tensor([2, 5, 7, 2]))  # class 5 not seen: -1 target is rejected


@pytest.mark.parametrize("seen", [True, False])
def test_unseen_logits_get_no_gradient_in_the_first_experience(seen):
    scenario, strategy = _build(_spec(seen=seen), CPU)
    before = _head(strategy).weight.detach().clone()
    strategy.train(scenario.benchmark.train_stream[0])  # classes 0, 1 of 4
    changed = (_head(strategy).weight.detach() != before).any(dim=1)  # (4,) per output row
    assert changed[:2].all()
    assert changed[2:].any() != seen  # off: the softmax pushes the unseen logits down too


def test_seen_loss_changes_results_and_is_recorded():
    on, off = run_one(_spec(seen=True)), run_one(_spec(seen=False))
    assert on["status"] == off["status"] == "ok"
    assert on["accuracy_matrix"] != off["accuracy_matrix"]
    assert on["config"]["scenario"]["loss_on_seen_classes"] is True
    assert off["config"]["scenario"]["loss_on_seen_classes"] is False


@pytest.mark.parametrize("strategy,hparams", [
    ("replay", {"mem_size": 20}), ("replay", {"mem_size": 20, "mode": "concat"}), ("gem", {"patterns_per_exp": 10}),
    ("gem", {"memory_size": 20, "concat_memory": True}), ("ewc", {}), ("lwf", {}), ("joint", {}),
])
def test_every_template_strategy_trains_with_the_seen_loss(strategy, hparams):
    _, built = _build(_spec(strategy, hparams=hparams), CPU)
    assert isinstance(built._criterion, SeenClassesLoss)
    assert built._criterion in built.plugins  # Avalanche registers a plugin criterion: it sees the events


def test_seen_loss_refused_where_it_cannot_apply():
    with pytest.raises(ValueError, match="class_il only"):
        entry = SCENARIOS.get("synthetic_task_il")
        build_scenario("synthetic_task_il", entry.params(loss_on_seen_classes=True), seed=0)
    (spec,) = tiny_specs(["naive"], scenario="synthetic_domain_il", loss_on_seen_classes=True)
    assert any("loss_on_seen_classes applies to class_il only" in p for p in preflight([spec]))
    assert not any("loss_on_seen_classes" in p for p in preflight([_spec()]))
    run = run_one(_spec("icarl", hparams={"memory_size": 20}))
    assert run["status"] == "failed" and "built-in loss" in run["error"]["message"]


# -- 32x32 padding ------------------------------------------------------------------------------------
def test_padded_stats_match_hsu_constants_and_keep_the_default_exact():
    assert split_mnist.padded_stats(0) == (split_mnist.MNIST_MEAN, split_mnist.MNIST_STD)
    mean, std = split_mnist.padded_stats(2)
    assert mean == pytest.approx(0.1000, abs=1e-4) and std == pytest.approx(0.2752, abs=1e-4)


def test_pad_gives_32x32_inputs_with_a_zero_border(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    fake = (torch.randint(0, 256, (200, 28, 28), generator=gen, dtype=torch.uint8), torch.arange(200) % 10)
    monkeypatch.setattr(split_mnist, "load_mnist", lambda train: fake)
    scen = build_scenario("split_mnist_class_il", split_mnist.SplitMNISTParams(pad=2), seed=0)
    assert scen.info.input_shape == (1, 32, 32) and scen.info.sample_bytes == 32 * 32  # uint8, as a buffer stores it
    x = scen.benchmark.train_stream[0].dataset[0][0]
    mean, std = split_mnist.padded_stats(2)
    assert x.shape == (1, 32, 32)
    assert torch.allclose(x[0, :2], torch.full((2, 32), -mean / std))
    plain = build_scenario("split_mnist_class_il", split_mnist.SplitMNISTParams(), seed=0)
    x0 = plain.benchmark.train_stream[0].dataset[0][0]
    assert torch.allclose(x[0, 2:30, 2:30] * std + mean, x0[0] * split_mnist.MNIST_STD + split_mnist.MNIST_MEAN,
                          atol=1e-5)


# -- Hsu's rehearsal memory and replay ---------------------------------------------------------------
class _Data(list):
    """A list with AvalancheDataset's ``subset``, ``train`` and concatenation (``_Data([d1, d2])``)."""

    def __init__(self, items=()) -> None:
        items = list(items)
        if items and all(isinstance(i, _Data) for i in items):
            items = [x for d in items for x in d]
        super().__init__(items)

    def subset(self, indices):
        return _Data(self[i] for i in indices)

    def train(self):
        return self


def test_task_split_memory_shrinks_older_parts_and_samples_at_random():
    memory = TaskSplitMemory(10)
    memory.update(_Data(range(100)))
    first = list(memory.parts[0])
    assert len(first) == 10 and first != list(range(10))  # random, not the first samples
    memory.update(_Data(range(100, 200)))
    assert [len(p) for p in memory.parts] == [5, 5] and list(memory.parts[0]) == first[:5]
    memory.update(_Data(range(200, 202)))  # a small task caps every share (their min(len(task), 10 // 3))
    assert [len(p) for p in memory.parts] == [2, 2, 2] and len(memory) == 6


def test_concat_rehearsal_repeats_memory_to_about_the_data_size():
    memory = TaskSplitMemory(10)
    plugin = ConcatRehearsalPlugin(memory)
    strategy = SimpleNamespace(adapted_dataset=_Data(range(35)), experience=SimpleNamespace(dataset=_Data(range(35))))
    plugin.after_train_dataset_adaptation(strategy)  # no memory yet: data unchanged
    assert len(strategy.adapted_dataset) == 35
    plugin.after_training_exp(strategy)
    strategy.adapted_dataset = _Data(range(100, 135))
    plugin.after_train_dataset_adaptation(strategy)
    concat = strategy.adapted_dataset
    assert len(concat) == 3 * 10 + 35 and concat[:10] == concat[10:20] == list(memory.parts[0])  # repeat 35 // 10
    assert concat[30:] == list(range(100, 135))
    assert plugin.memory_usage() == (10, 0)
    assert ConcatRehearsalPlugin(memory, update=False).memory_usage() == (0, 0)


def test_replay_concat_mode_trains_on_memory_plus_data_on_the_tensor_path():
    scenario, strategy = _build(_spec("replay", hparams={"mem_size": 20, "mode": "concat"}), CPU)
    assert _train_all(strategy, scenario) == [32, 20 + 32]  # 20 stored after exp 0; repeat 32 // 20 = 1
    assert strategy.data_path["train"] == "tensor"
    batch = run_one(_spec("replay", hparams={"mem_size": 20}))
    concat = run_one(_spec("replay", hparams={"mem_size": 20, "mode": "concat"}))
    assert concat["replay_memory"]["samples"] == 20 == batch["replay_memory"]["samples"]
    assert concat["config"]["strategy"]["mode"] == "concat"


class _Iterations(SupervisedPlugin):
    """Training iterations of each experience's first epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: list[int] = []

    def before_training_exp(self, strategy, **kwargs) -> None:
        self.counts.append(0)

    def after_training_iteration(self, strategy, **kwargs) -> None:
        if strategy.clock.train_exp_epochs == 0:
            self.counts[-1] += 1


@pytest.mark.parametrize("fast", [True, False])
def test_concat_rehearsal_shuffles_memory_and_data_uniformly_with_task_labels(fast):
    (spec,) = tiny_specs(["replay"], scenario="synthetic_task_il", n_classes=6, n_experiences=3,
                         hparams={"replay": {"mem_size": 8, "mode": "concat"}})
    spec = dataclasses.replace(spec, train={**spec.train, "fast_data": fast})
    scenario, strategy = _build(spec, CPU)
    spy = _Iterations()
    strategy.plugins.append(spy)
    sizes = _train_all(strategy, scenario)
    # exp 2: 4 + 4 stored, repeated 32 // 8 = 4 times, + 32 new = 64 -> 4 batches of 16 (their loader);
    # Avalanche's task-balanced loader would make 7 (6/5/5 per task, the current task's 32 in 5s).
    assert sizes == [32, 64, 64] and spy.counts == [2, 4, 4]
    if fast:
        assert strategy.data_path["train"] == "tensor"


# -- GEM with Hsu's memory ---------------------------------------------------------------------------
@pytest.mark.parametrize("concat", [False, True])
def test_gem_split_memory_fills_per_experience_and_optionally_rehearses(concat):
    hp = {"memory_size": 20, "concat_memory": concat}
    scenario, strategy = _build(_spec("gem", hparams=hp), CPU)
    gem = next(p for p in strategy.plugins if isinstance(p, SplitMemoryGEMPlugin))
    assert _train_all(strategy, scenario) == [32, 32 + (20 if concat else 0)]
    assert [len(x) for x in gem.memory_x.values()] == [10, 10]  # 20 // 2 experiences each
    assert gem.G.shape[0] == 1  # a reference gradient from the first experience's memory
    assert run_one(_spec("gem", hparams=hp))["replay_memory"]["samples"] == 20  # counted once


def test_gem_params_validate_memory_options():
    from strategies.gem import GEMParams

    with pytest.raises(ValueError, match="concat_memory needs memory_size"):
        GEMParams(concat_memory=True)
    assert run_one(_spec("gem", hparams={"memory_size": 1}))["status"] == "failed"  # < 2 experiences


# -- optimisers and the suite ------------------------------------------------------------------------
def test_adagrad_is_a_train_optimizer():
    scenario = build_scenario("synthetic_class_il", SCENARIOS.get("synthetic_class_il").params(), seed=0)
    model = torch.nn.Linear(3, 2)
    ctx = StrategyContext(model=model, info=scenario.info, train=TrainConfig(optimizer="adagrad", lr=0.01),
                          device=CPU, evaluator=None)
    opt = ctx.optimizer()
    assert isinstance(opt, torch.optim.Adagrad) and opt.defaults["lr"] == 0.01
    with pytest.raises(ValueError, match="'adagrad'"):
        TrainConfig(optimizer="rmsprop")


def test_hsu2018_suite_follows_their_scripts():
    specs = load_suite("hsu2018", ["suite.seeds=[0,1,2,3,4]"])
    names = ["naive", "naive_sgd", "naive_adagrad", "l2", "replay_1100", "replay_4400", "ewc", "online_ewc",
             "si", "mas", "lwf", "gem_1100", "joint"]
    assert sorted({s.strategy for s in specs}) == sorted(names)
    assert len(specs) == 3 * len(names) * 5
    by = {(s.setting, s.strategy): s for s in specs}
    assert by["class_il", "naive"].scenario_params["loss_on_seen_classes"] is True
    assert by["task_il", "naive"].scenario_params["loss_on_seen_classes"] is False
    assert all(s.scenario_params["pad"] == 2 for s in specs)
    gem = by["class_il", "gem_1100"]
    assert gem.strategy_params == {**gem.strategy_params, "memory_size": 1100, "concat_memory": True,
                                   "memory_strength": 0.5}
    assert (gem.train["optimizer"], gem.train["lr"]) == ("sgd", 0.01)
    assert by["class_il", "naive_adagrad"].train["optimizer"] == "adagrad"
    assert by["domain_il", "replay_4400"].strategy_params["mode"] == "concat"
    assert by["domain_il", "replay_4400"].strategy_params["mem_size"] == 4400
    assert {s.train["epochs"] for s in specs} == {4} and {s.train["batch_size"] for s in specs} == {128}
    assert len(load_suite("hsu2018", ["suite.strategies=['gem_4400']", "suite.seeds=[0,1,2]"])) == 9  # defined, not run by default


@pytest.mark.parametrize("strategy,hparams", [("ewc", {}), ("ewc", {"fisher_label": "true"}), ("mas", {}),
                                              ("mas", {"per_sample": True})])
@pytest.mark.parametrize("seen", [True, False])
def test_importance_passes_read_the_outputs_the_loss_covers(strategy, hparams, seen):
    """Hsu's class-IL Fisher and MAS passes use the seen classes' outputs only (their valid_out_dim)."""
    from strategies.plugins.importance import QuadraticPenaltyPlugin

    scenario, built = _build(_spec(strategy, seen=seen, hparams=hparams), CPU)
    plugin = next(p for p in built.plugins if isinstance(p, QuadraticPenaltyPlugin))
    first = scenario.benchmark.train_stream[0]
    built.train(first)
    unseen = sorted(set(range(4)) - set(first.classes_in_this_experience))
    rows = {n: v for n, v in plugin.terms[0][0].items() if n.startswith("head.")}
    unseen_importance = sum(float(v[unseen].abs().sum()) for v in rows.values())
    assert (unseen_importance == 0.0) is seen, unseen_importance
