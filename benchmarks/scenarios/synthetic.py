"""Tiny synthetic image streams for tests: class-dependent patterns plus noise, no data files.

Shaped like MNIST (1, 28, 28) so every image model (MLP, ViT) runs on it; learnable in a few steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmarks.core import ScenarioInfo
from benchmarks.core.storage import float_bytes
from benchmarks.core.typed import check
from benchmarks.data.tensors import LabelledTensorDataset
from benchmarks.scenarios.base import SCENARIOS, Scenario


@dataclass(frozen=True)
class SyntheticParams:
    """Args: n_classes; n_experiences (divides n_classes); train_per_class; test_per_class; noise std;
    loss_on_seen_classes: as split-MNIST's (class_il only)."""

    n_classes: int = 4
    n_experiences: int = 2
    train_per_class: int = 16
    test_per_class: int = 8
    noise: float = 0.5
    loss_on_seen_classes: bool = False

    def __post_init__(self) -> None:
        check(self.n_experiences >= 1, "n_experiences must be >= 1")
        check(self.n_classes >= self.n_experiences, "more experiences than classes")
        check(self.n_classes % self.n_experiences == 0, "n_experiences must divide n_classes")
        check(self.train_per_class >= 1 and self.test_per_class >= 1, "per-class sizes must be >= 1")


def _make(params: SyntheticParams, per_class: int, gen: torch.Generator, protos: torch.Tensor):
    y = torch.arange(params.n_classes).repeat_interleave(per_class)
    x = protos[y] + params.noise * torch.randn(len(y), 1, 28, 28, generator=gen)
    return LabelledTensorDataset(x, y)


def build_synthetic(params: SyntheticParams, *, seed: int, name: str, setting: str) -> Scenario:
    """Gaussian-noise images around one random prototype per class (prototypes fixed by seed 0)."""
    from avalanche.benchmarks import nc_benchmark

    if params.loss_on_seen_classes and setting != "class_il":
        raise ValueError(f"scenario {name!r}: loss_on_seen_classes applies to class_il only (remove it)")
    protos = torch.randn(params.n_classes, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(seed)
    per_exp = params.n_classes // params.n_experiences
    bench = nc_benchmark(
        _make(params, params.train_per_class, gen, protos),
        _make(params, params.test_per_class, gen, protos),
        n_experiences=params.n_experiences,
        task_labels=setting == "task_il",
        shuffle=False,
        seed=seed,
        fixed_class_order=list(range(params.n_classes)),
        class_ids_from_zero_in_each_exp=setting != "class_il",
    )
    info = ScenarioInfo(
        name=name, family="synthetic", setting=setting, n_experiences=params.n_experiences,
        n_outputs=params.n_classes if setting == "class_il" else per_exp, input_shape=(1, 28, 28),
        modality="image",
        classes_per_experience=tuple(
            tuple(range(i * per_exp, (i + 1) * per_exp)) for i in range(params.n_experiences)
        ),
        sample_bytes=float_bytes((1, 28, 28)),  # float data: float32 is its stored form
        loss_on_seen_classes=params.loss_on_seen_classes,
    )
    return Scenario(bench, info)


for _setting in ("class_il", "task_il", "domain_il"):
    SCENARIOS.register(
        f"synthetic_{_setting}", params=SyntheticParams, setting=_setting, family="synthetic", default_model="mlp"
    )(build_synthetic)
