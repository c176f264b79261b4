"""Known breakages of avalanche-lib 0.6.0 with today's packages: each works or is refused clearly."""

from __future__ import annotations

import sys

import pytest
from helpers import tiny_specs

from benchmarks.config.preflight import preflight
from benchmarks.engine.evaluation import make_evaluator
from benchmarks.engine.runner import _build, resolve_device, run_one
from strategies import STRATEGIES


def test_er_aml_with_too_small_buffer_is_refused_before_training():
    doc = {"hparams": {"er_aml": {"mem_size": 8, "batch_size_mem": 10}}}
    (spec,) = tiny_specs(["er_aml"], **doc)
    result = run_one(spec)
    assert result["status"] == "failed"
    assert result["error"]["type"] == "StrategyNotApplicable" and result["error"]["experience"] == -1
    assert "loops forever" in result["error"]["message"] and "Raise mem_size to >= 64" in result["error"]["message"]
    assert result["train_time_s"] == []


def test_bic_runs_despite_the_removed_verbose_keyword():
    (spec,) = tiny_specs(["bic"], hparams={"bic": {"mem_size": 40, "stage_2_epochs": 2}})
    result = run_one(spec)
    assert result["status"] == "ok", result["error"]


def test_gem_without_quadprog_is_refused_before_training(monkeypatch):
    monkeypatch.setitem(sys.modules, "quadprog", None)  # import quadprog -> ImportError
    problems = preflight(tiny_specs(["gem"]))
    assert any("pip install quadprog" in p for p in problems)


@pytest.mark.parametrize("name", [n for n in STRATEGIES if not STRATEGIES.get(n).meta["needs_transformer"]])
def test_every_strategy_gets_the_suite_eval_batch_size(name):
    setting = STRATEGIES.get(name).meta["settings"][0]
    (spec,) = tiny_specs([name], scenario=f"synthetic_{setting}")
    _, strategy = _build(spec, resolve_device("cpu"))
    assert strategy.eval_mb_size == 64  # never Avalanche's per-sample default of 1
    assert strategy.train_mb_size == 16


def test_no_avalanche_logger_is_used():
    # WandBLogger fails with wandb 0.31; clbench records results in its own JSON, with no loggers.
    assert make_evaluator().loggers == []
