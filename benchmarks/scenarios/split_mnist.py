"""Split-MNIST in three settings (van de Ven & Tolias 2019; Hsu et al. 2018).

Five experiences of two digits (0-1, 2-3, ...) by default:
- class_il: one 10-way head, original labels (no remapping, as in Hsu et al. 2018);
- task_il: task labels, one 2-way head per task (labels 0/1 within each pair);
- domain_il: one 2-way head shared by all experiences: first (even) or second (odd) digit of the pair.

Options for Hsu et al. 2018's exact protocol (GT-RIPL/Continual-Learning-Benchmark): ``pad = 2`` gives
their 32x32 inputs (zero border, normalised with the padded image's statistics: 0.1000 / 0.2752, as
their dataloaders/base.py), ``loss_on_seen_classes`` their class-IL loss over the outputs of the
classes seen so far.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

import torch

from benchmarks.core import ScenarioInfo
from benchmarks.core.storage import image_bytes
from benchmarks.core.typed import check
from benchmarks.data.mnist import load_mnist
from benchmarks.data.tensors import LabelledTensorDataset, stratified_subset
from benchmarks.scenarios.base import SCENARIOS, Scenario

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


@dataclass(frozen=True)
class SplitMNISTParams:
    """Split-MNIST options.

    Args:
        n_experiences: number of experiences; must divide the 10 digits evenly.
        class_order: "fixed" (0-1, 2-3, ... as in the literature) or "random" (shuffled by the run seed).
        train_fraction: fraction of each digit's training images kept (1.0 = full MNIST).
        test_fraction: fraction of each digit's test images kept.
        pad: zero pixels added on each side of the 28x28 images before normalisation (2 -> 32x32, the
            input of Hsu et al. 2018: 1024 features for the MLP).
        loss_on_seen_classes: class_il only: train on the outputs of the classes seen so far (Hsu et
            al. 2018's valid_out_dim, growing by each experience's classes); evaluation uses all outputs.
    """

    n_experiences: int = 5
    class_order: Literal["fixed", "random"] = "fixed"
    train_fraction: float = 1.0
    test_fraction: float = 1.0
    pad: int = 0
    loss_on_seen_classes: bool = False

    def __post_init__(self) -> None:
        check(self.n_experiences in (1, 2, 5, 10), "n_experiences must divide 10 digits: 1, 2, 5 or 10")
        check(0 < self.train_fraction <= 1, "train_fraction must be in (0, 1]")
        check(0 < self.test_fraction <= 1, "test_fraction must be in (0, 1]")
        check(0 <= self.pad <= 8, "pad must be in 0..8 pixels (2 gives Hsu et al.'s 32x32)")


def padded_stats(pad: int) -> tuple[float, float]:
    """Mean and std of MNIST pixels once a zero border of ``pad`` pixels is added (exact, from 28x28's)."""
    if pad == 0:
        return MNIST_MEAN, MNIST_STD  # the usual constants, bit for bit
    f = 28 * 28 / (28 + 2 * pad) ** 2  # share of the padded image that is the original
    mean = MNIST_MEAN * f
    return mean, math.sqrt((MNIST_STD**2 + MNIST_MEAN**2) * f - mean**2)


def _split(train: bool, fraction: float, seed: int, pad: int = 0) -> LabelledTensorDataset:
    x, y = load_mnist(train)
    idx = stratified_subset(y, fraction, seed)
    xf = x[idx].float().div_(255.0).unsqueeze(1)  # (N, 1, 28, 28) in [0, 1]
    if pad:
        xf = torch.nn.functional.pad(xf, (pad, pad, pad, pad))  # (N, 1, 28 + 2 pad, 28 + 2 pad), zeros
    mean, std = padded_stats(pad)
    return LabelledTensorDataset(xf.sub_(mean).div_(std), y[idx])


def build_split_mnist(params: SplitMNISTParams, *, seed: int, name: str, setting: str) -> Scenario:
    """Build the split-MNIST benchmark for ``setting`` with the run's seed (subsets, class order)."""
    from avalanche.benchmarks import nc_benchmark

    if params.loss_on_seen_classes and setting != "class_il":
        raise ValueError(f"scenario {name!r}: loss_on_seen_classes applies to class_il only (remove it)")
    order = list(range(10))
    if params.class_order == "random":
        random.Random(seed).shuffle(order)
    per_exp = 10 // params.n_experiences
    side = 28 + 2 * params.pad
    bench = nc_benchmark(
        _split(True, params.train_fraction, seed, params.pad),
        _split(False, params.test_fraction, seed, params.pad),
        n_experiences=params.n_experiences,
        task_labels=setting == "task_il",
        shuffle=False,
        seed=seed,
        fixed_class_order=order,
        # task_il and domain_il relabel each pair to 0..per_exp-1; class_il keeps the digit labels.
        class_ids_from_zero_in_each_exp=setting != "class_il",
    )
    info = ScenarioInfo(
        name=name,
        family="split_mnist",
        setting=setting,
        n_experiences=params.n_experiences,
        n_outputs=10 if setting == "class_il" else per_exp,
        input_shape=(1, side, side),
        modality="image",
        classes_per_experience=tuple(tuple(order[i * per_exp : (i + 1) * per_exp]) for i in range(params.n_experiences)),
        sample_bytes=image_bytes((1, side, side)),  # a buffer keeps the uint8 image, not the float32 one trained on
        loss_on_seen_classes=params.loss_on_seen_classes,
    )
    return Scenario(bench, info)


for _setting in ("class_il", "task_il", "domain_il"):
    SCENARIOS.register(
        f"split_mnist_{_setting}", params=SplitMNISTParams, setting=_setting,
        family="split_mnist", default_model="mlp",
    )(build_split_mnist)
