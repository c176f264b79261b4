"""The scenario a tuning trial sees: the first k experiences' training data, split into train / validation.

Only ``benchmark.train_stream`` of the built scenario is read (its first k experiences); the test stream is
never touched. Each of those experiences' training sets is split per class (a ``validation_fraction`` of
every class, at least one sample of a class with two or more, drawn with a fixed seed) into a training part
and a validation part; the trial trains on the training parts and is scored on the validation parts, which
take the place of the test stream (Chaudhry et al. 2019's protocol; docs/tuning.md).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from benchmarks.scenarios.base import Scenario


def split_indices(targets: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) indices: per class, round(fraction x n) samples (>= 1 when n >= 2) to validation."""
    gen = torch.Generator().manual_seed(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(targets):
        by_class.setdefault(int(y), []).append(i)
    train, val = [], []
    for y in sorted(by_class):
        idx = by_class[y]
        order = [idx[j] for j in torch.randperm(len(idx), generator=gen).tolist()]
        n_val = min(max(round(fraction * len(idx)), 1), len(idx) - 1) if len(idx) >= 2 else 0
        val += order[:n_val]
        train += order[n_val:]
    return sorted(train), sorted(val)


def holdout_scenario(scenario: Scenario, *, experiences: int, validation_fraction: float, seed: int) -> Scenario:
    """The tuning scenario of ``scenario``: its first ``experiences`` training sets, each split in two.

    Args:
        scenario: the built scenario (only its train stream is read).
        experiences: k, the experiences the tuner may see.
        validation_fraction: per-class share held out for validation.
        seed: seed of the split (experience i uses seed + i).
    """
    from avalanche.benchmarks import dataset_benchmark

    n = scenario.info.n_experiences
    if not 1 <= experiences <= n:
        raise ValueError(f"[tune] k = {experiences}, but scenario {scenario.info.name!r} has {n} experiences; "
                         f"set k to 1..{n}")
    train_parts, val_parts = [], []
    for i, exp in enumerate(scenario.benchmark.train_stream):
        if i == experiences:
            break
        train_idx, val_idx = split_indices(list(exp.dataset.targets), validation_fraction, seed + i)
        if not val_idx:
            raise ValueError(f"experience {i} of {scenario.info.name!r} has no class with 2 or more training "
                             "samples: nothing to hold out for validation")
        train_parts.append(exp.dataset.subset(train_idx))
        val_parts.append(exp.dataset.subset(val_idx))
    bench = dataset_benchmark(train_parts, val_parts)
    info = replace(scenario.info, n_experiences=experiences,
                   classes_per_experience=scenario.info.classes_per_experience[:experiences])
    return Scenario(bench, info)
