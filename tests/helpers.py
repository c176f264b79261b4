"""Test helpers: tiny run specs on the synthetic stream (no data files, CPU, fast)."""

from __future__ import annotations

from benchmarks.config.loader import expand


def tiny_doc(strategies, scenario="synthetic_class_il", seeds=(0,), **scenario_params):
    """A suite document with one synthetic scenario; strategies and params as given."""
    return {
        "suite": {"seeds": list(seeds), "strategies": list(strategies), "device": "cpu"},
        "train": {"epochs": 1, "batch_size": 16, "eval_batch_size": 64},
        "scenarios": {scenario: dict(scenario_params)},
    }


def tiny_specs(strategies, scenario="synthetic_class_il", seeds=(0,), **scenario_params):
    """Expanded run specs for ``tiny_doc``."""
    return expand(tiny_doc(strategies, scenario, seeds, **scenario_params), name="tiny", where="test")
