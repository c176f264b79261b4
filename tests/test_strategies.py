"""Every registered strategy x every setting it applies to, on a tiny synthetic stream (CPU, fast)."""

from __future__ import annotations

import pytest
from helpers import tiny_specs

from benchmarks.core.typed import ConfigError
from benchmarks.engine.runner import run_one
from benchmarks.models import MODELS
from benchmarks.scenarios import SETTINGS
from strategies import STRATEGIES

# Small memories so buffers fill on 16 samples per class.
SMALL = {"replay": {"mem_size": 20}, "gdumb": {"mem_size": 20}, "icarl": {"memory_size": 20},
         "der": {"mem_size": 20}, "gem": {"patterns_per_exp": 10}, "agem": {"patterns_per_exp": 10, "sample_size": 8},
         "bic": {"mem_size": 40, "stage_2_epochs": 2}, "er_aml": {"mem_size": 80, "batch_size_mem": 4},
         "ranpac": {"M": 300}, "klda": {"D": 300}}  # random feature widths: 5000 by default


def _cases():
    for name in STRATEGIES:
        meta = STRATEGIES.get(name).meta
        for setting in SETTINGS:
            if setting in meta["settings"]:
                yield pytest.param(name, setting, id=f"{name}-{setting}")


def _spec(name: str, setting: str):
    meta = STRATEGIES.get(name).meta
    model = "vit" if meta["needs_transformer"] and "vit" in MODELS else "mlp"
    doc_params = {"model": {"name": model}, "hparams": {name: SMALL.get(name, {})}}
    (spec,) = tiny_specs([name], scenario=f"synthetic_{setting}", **doc_params)
    return spec


@pytest.mark.parametrize("name,setting", list(_cases()))
def test_strategy_runs_on_tiny_stream(name, setting):
    result = run_one(_spec(name, setting))
    assert result["status"] == "ok", result["error"]
    R = result["accuracy_matrix"]
    assert len(R) == 2 and all(len(row) == 2 for row in R)
    assert all(0.0 <= a <= 1.0 for row in R for a in row)
    assert result["metrics"]["average_accuracy"] == pytest.approx(sum(R[-1]) / 2)
    assert len(result["train_time_s"]) == 2


@pytest.mark.parametrize("name", [n for n in STRATEGIES if n in ("pnn", "icarl")])
def test_inapplicable_strategy_is_refused_before_training(name):
    setting = next(s for s in SETTINGS if s not in STRATEGIES.get(name).meta["settings"])
    with pytest.raises(ConfigError, match=f"{name}.*does not apply to {setting}"):
        tiny_specs([name], scenario=f"synthetic_{setting}")


def test_every_strategy_documents_its_defaults():
    for name in STRATEGIES:
        entry = STRATEGIES.get(name)
        assert entry.doc, f"{name} has no docstring"
        assert entry.params.__doc__, f"{name} params have no docstring"


def test_memory_strategies_report_their_buffer():
    result = run_one(_spec("replay", "class_il"))
    assert result["replay_memory"]["samples"] == 20
    assert result["replay_memory"]["bytes"] == 20 * (28 * 28 * 4 + 1)  # float32 synthetic input + 1-byte label
    assert run_one(_spec("naive", "class_il"))["replay_memory"]["samples"] == 0
