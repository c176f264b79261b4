"""Epoch time of a text backbone with frozen layers < k: full forward vs the frozen-prefix cache.

``python -m benchmarks.measure.speed --prefix-cache K [--quick]``: MiniLM (pretrained, ``frozen_layers = K``)
trained with Adam on a CLINC150 subset for a few epochs, calling ``model(x)`` as strategies do,
(1) built with ``cache_prefix = false``: the whole model computed every step, (2) built with the
default ``cache_prefix = true``: the model's own FrozenPrefixCache (benchmarks/models/prefix_cache.py;
the first epoch fills it), i.e. exactly what a suite run executes. Same batches, same initial model;
the epochs of the two modes are interleaved so that machine load hits both alike.
"""

from __future__ import annotations

import statistics
import time

import torch

from benchmarks.measure.workloads import Workload, run_spec, sync


class _Trainer:
    """Adam on the trainable parameters of ``model``; ``epoch()`` returns its seconds."""

    def __init__(self, model, data, batch_size: int, seed: int) -> None:
        self.model, self.data, self.batch_size = model, data, batch_size
        self.opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        self.gen = torch.Generator().manual_seed(seed)  # same batches for both modes

    def epoch(self) -> float:
        t0 = time.perf_counter()
        for x, y in self.data:
            for idx in torch.randperm(len(x), generator=self.gen).split(self.batch_size):
                self.opt.zero_grad()
                torch.nn.functional.cross_entropy(self.model(x[idx]), y[idx]).backward()
                self.opt.step()
            sync(x.device)
        return time.perf_counter() - t0


def measure(k: int, *, per_class: int, domains: int, epochs: int, device: str, model: str = "minilm") -> dict:
    """Per-epoch seconds of the full model and of the cached prefix (epochs interleaved), samples per epoch."""
    from benchmarks.engine.runner import resolve_device
    from benchmarks.fastpath.batches import materialize
    from benchmarks.models import MODELS, build_model
    from benchmarks.scenarios import SCENARIOS, build_scenario

    w = Workload("prefix", "split_text_class_il", model, {"keep_experiences": domains, "train_per_class": per_class,
                                                          "test_per_class": 5}, {"frozen_layers": k})
    spec, dev = run_spec(w, device, True), resolve_device(device)
    scenario = build_scenario(spec.scenario_entry, SCENARIOS.get(spec.scenario_entry).params(**spec.scenario_params),
                              seed=0)
    data = [materialize(e.dataset.train(), dev)[:2] for e in scenario.benchmark.train_stream]
    trainers = {}
    for mode, cache in (("full", False), ("cached", True)):
        torch.manual_seed(0)
        params = MODELS.get(model).params(frozen_layers=k, cache_prefix=cache)
        net = build_model(model, params, scenario.info).to(dev).train()
        if cache and not net.uses_prefix_cache():
            raise ValueError(f"--prefix-cache {k}: the model caches a frozen prefix only for 0 < K < {net.n_layers}")
        trainers[mode] = _Trainer(net, data, 32, seed=1)
    out = {"samples": sum(len(x) for x, _ in data), "full": [], "cached": []}
    for _ in range(epochs):
        for mode, trainer in trainers.items():
            out[mode].append(trainer.epoch())
    out["misses"] = trainers["cached"].model.prefix_cache.misses  # distinct inputs whose prefix was computed
    return out


def report(k: int, quick: bool, device: str) -> str:
    """Run ``measure`` and format the ratio of a warm cached epoch to a full epoch."""
    m = measure(k, per_class=10 if quick else 30, domains=2 if quick else 5, epochs=3, device=device)
    full, cached = m["full"], m["cached"]
    warm = statistics.median(c / f for c, f in zip(cached[1:], full[1:]))  # same-epoch pairs: same load
    return (f"MiniLM frozen below layer {k} of 6, {m['samples']} samples/epoch, batch 32\n"
            f"  full model, per epoch (s): {', '.join(f'{t:.2f}' for t in full)}\n"
            f"  frozen-prefix cache (the model's own, cache_prefix = true), per epoch (s): "
            f"{', '.join(f'{t:.2f}' for t in cached)} (epoch 1 fills it; {m['misses']} prefixes computed)\n"
            f"  cached / full, epochs 2+ (median of same-epoch ratios) = {warm:.2f} ({1 / warm:.1f}x faster); "
            f"epoch 1 = {cached[0] / full[0]:.2f}")
