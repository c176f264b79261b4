"""Lean per-iteration plugin dispatch (benchmarks/fastpath/dispatch.py) and the deferred NaN check (guards.py)."""

from __future__ import annotations

import math

import pytest
import torch
from avalanche.core import SupervisedPlugin
from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
from avalanche.training.plugins import EvaluationPlugin
from helpers import tiny_specs

from benchmarks.engine.guards import FiniteLossGuard, NonFiniteLossError
from benchmarks.engine.runner import run_one
from benchmarks.fastpath import dispatch
from benchmarks.fastpath.dispatch import EVAL_EVENTS, TRAIN_EVENTS, handler, handlers, lean_events


class Counting(SupervisedPlugin):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def before_forward(self, strategy, **kwargs) -> None:
        self.calls += 1


def test_inherited_noops_are_skipped_and_overrides_kept():
    p = Counting()
    assert handler(p, "before_forward") is not None
    for event in TRAIN_EVENTS + EVAL_EVENTS:
        if event != "before_forward":
            assert handler(p, event) is None, event


def test_instance_attribute_handlers_are_kept():
    p = Counting()
    p.after_update = lambda strategy, **kw: None
    assert handler(p, "after_update") is p.after_update


def test_evaluation_plugin_is_called_only_for_events_its_metrics_use():
    eval_only = EvaluationPlugin(accuracy_metrics(experience=True), loggers=[])
    assert [e for e in TRAIN_EVENTS + EVAL_EVENTS if handler(eval_only, e)] == ["after_eval_iteration"]
    train_mb = EvaluationPlugin(accuracy_metrics(minibatch=True), loss_metrics(epoch=True), loggers=[])
    used = {e for e in TRAIN_EVENTS + EVAL_EVENTS if handler(train_mb, e)}
    assert {"before_training_iteration", "after_training_iteration"} <= used  # minibatch resets per iteration


def test_loggers_keep_every_event():
    from avalanche.logging import TextLogger

    with open("/dev/null", "w") as sink:
        ev = EvaluationPlugin(accuracy_metrics(experience=True), loggers=[TextLogger(sink)])
        assert all(handler(ev, e) is not None for e in TRAIN_EVENTS + EVAL_EVENTS)


def test_template_overrides_of_triggers_are_not_replaced():
    from avalanche.training import DER, Naive

    assert "_before_forward" in lean_events(Naive)
    assert "_before_forward" not in lean_events(DER)  # DER's own _before_forward concatenates its buffer
    assert "_after_training_iteration" in lean_events(DER)


def _all_handlers(plugins, event):  # Avalanche's trigger_plugins: every plugin that has the attribute
    return [getattr(p, event) for p in plugins if hasattr(p, event)]


def _trained(spec):
    """Final parameters and last evaluation metrics of ``spec`` trained through its stream."""
    from benchmarks.engine.runner import _build, seed_everything

    scenario, strategy = _build(spec, torch.device("cpu"))
    seed_everything(spec.seed + 1)
    for experience in scenario.benchmark.train_stream:
        strategy.train(experience)
        metrics = strategy.eval(scenario.benchmark.test_stream)
    return [p.detach().clone() for p in strategy.model.parameters()], metrics


@pytest.mark.parametrize("strategy", ["naive", "ewc", "si", "lwf", "replay", "der", "agem", "icarl", "gdumb"])
def test_lean_dispatch_trains_bit_identically(strategy, monkeypatch):
    (spec,) = tiny_specs([strategy])
    lean_params, lean_metrics = _trained(spec)
    monkeypatch.setattr(dispatch, "handlers", _all_handlers)  # back to Avalanche's call-everything
    full_params, full_metrics = _trained(spec)
    assert len(lean_params) == len(full_params)
    assert all(torch.equal(a, b) for a, b in zip(lean_params, full_params))
    assert lean_metrics == full_metrics


def test_the_parameter_comparison_detects_a_skipped_handler(monkeypatch):
    (spec,) = tiny_specs(["ewc"])
    reference, _ = _trained(spec)
    keep = dispatch.handlers
    monkeypatch.setattr(dispatch, "handlers", lambda plugins, event: [
        h for h in keep(plugins, event) if type(getattr(h, "__self__", None)).__name__ != "FisherPlugin"])
    without_ewc, _ = _trained(spec)
    assert not all(torch.equal(a, b) for a, b in zip(reference, without_ewc))


def test_a_run_through_the_runner_still_records_its_matrix():
    (spec,) = tiny_specs(["replay"])
    result = run_one(spec)
    assert result["status"] == "ok" and len(result["accuracy_matrix"]) == 2


def test_plugins_added_mid_run_are_seen():
    from avalanche.training import Naive

    from benchmarks.fastpath.template import fast_template

    model = torch.nn.Linear(4, 3)
    strat = fast_template(Naive)(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                 train_mb_size=4, evaluator=EvaluationPlugin(loggers=[]))
    strat._before_forward()
    extra = Counting()
    strat.plugins.append(extra)
    strat._before_forward()
    strat._before_forward()
    assert extra.calls == 2
    assert handlers(strat.plugins, "before_forward") == [extra.before_forward]


class _Clock:
    train_exp_counter, train_exp_epochs, train_epoch_iterations = 2, 0, 0


class _Strategy:
    def __init__(self) -> None:
        self.clock = _Clock()
        self.loss = torch.tensor(1.0)


def test_deferred_guard_names_the_first_bad_iteration():
    guard, s = FiniteLossGuard(check_every=4), _Strategy()
    guard.before_training_epoch(s)
    losses = [1.0, 2.0, math.inf, math.nan]
    with pytest.raises(NonFiniteLossError, match="experience 2, epoch 0, iteration 2;"):
        for i, v in enumerate(losses):
            s.clock.train_epoch_iterations, s.loss = i, torch.tensor(v)
            guard.before_backward(s)  # raises at the 4th call, naming iteration 2


def test_deferred_guard_checks_at_the_end_of_the_epoch():
    guard, s = FiniteLossGuard(check_every=50), _Strategy()
    guard.before_training_epoch(s)
    for i, v in enumerate([1.0, math.nan, 1.0]):
        s.clock.train_epoch_iterations, s.loss = i, torch.tensor(v)
        guard.before_backward(s)  # fewer than 50 iterations: no check yet
    with pytest.raises(NonFiniteLossError, match="iteration 1;"):
        guard.after_training_epoch(s)
    guard.before_training_epoch(s)
    s.loss = torch.tensor(0.5)
    guard.before_backward(s)
    guard.after_training_epoch(s)  # a new epoch starts clean


def test_guard_rejects_a_bad_interval():
    with pytest.raises(ValueError, match="check_every"):
        FiniteLossGuard(check_every=0)


def test_guard_checks_a_loss_with_several_elements():
    guard, s = FiniteLossGuard(), _Strategy()
    s.loss = torch.tensor([1.0, math.nan])
    with pytest.raises(NonFiniteLossError, match="not finite at experience 2"):
        guard.before_backward(s)
    s.loss = torch.tensor([1.0, 2.0])
    guard.before_backward(s)
