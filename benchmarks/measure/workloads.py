"""The workloads of the speed benchmark and the run spec of each (shared by speed and speed_prefix)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Workload:
    """One row of the benchmark: a scenario, a model and their options."""

    label: str
    scenario: str
    model: str
    scenario_params: dict[str, Any] = field(default_factory=dict)
    model_params: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 128


def workloads(quick: bool) -> list[Workload]:
    """The MLP row, and the Transformer-on-text row when the text side is registered."""
    mnist = {"train_fraction": 0.2, "test_fraction": 0.2} if quick else {}
    text = {"keep_experiences": 5, "train_per_class": 20 if quick else 100, "test_per_class": 10}
    return [
        Workload("MLP 2x400, split-MNIST class-IL" + (" (20%)" if quick else ""), "split_mnist_class_il", "mlp",
                 mnist),
        Workload(f"text_transformer, split-text class-IL (CLINC150, 5 domains, {text['train_per_class']}/intent)",
                 "split_text_class_il", "text_transformer", text),
        # The model's work made negligible: what remains is each loop's own cost per mini-batch, which
        # does not shrink on a GPU (the CPU stand-in for the GPU comparison of (b) and (c)).
        Workload("MLP 2x16, split-MNIST class-IL: loop cost" + (" (20%)" if quick else ""), "split_mnist_class_il",
                 "mlp", mnist, {"hidden": 16}),
    ]


def missing_parts(w: Workload) -> str | None:
    """Why a workload cannot run here (an unregistered scenario or model), or None."""
    from benchmarks.models import MODELS
    from benchmarks.scenarios import SCENARIOS

    for registry, name in ((SCENARIOS, w.scenario), (MODELS, w.model)):
        if name not in registry:
            return f"{name!r} is not registered"
    return None


def run_spec(w: Workload, device: str, fast: bool, seed: int = 0):
    """The suite's run spec of workload ``w`` with Naive (fast data path on or off)."""
    from benchmarks.config.loader import expand

    doc = {
        "suite": {"seeds": [seed], "strategies": ["naive"], "device": device},
        "train": {"epochs": 1, "batch_size": w.batch_size, "optimizer": "adam", "lr": 1e-3, "fast_data": fast},
        "scenarios": {w.scenario: {**w.scenario_params, "model": {"name": w.model, **w.model_params}}},
    }
    (spec,) = expand(doc, name="speed", where="benchmarks.measure.speed")
    return spec


def sync(device) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
