"""Epoch time of a text backbone with frozen layers < k: full forward vs FrozenPrefixCache.

``python -m benchmarks.speed --prefix-cache K [--quick]``: MiniLM (pretrained, ``frozen_layers = K``)
trained with Adam on a CLINC150 subset for a few epochs, (1) computing the whole model every step,
(2) with benchmarks/models/prefix_cache.py (first epoch fills the cache). Same batches, same model.
"""

from __future__ import annotations

import time

import torch

from benchmarks.speed import Workload, _sync, run_spec


def _epochs(model, forward, data, epochs: int, batch_size: int, seed: int) -> list[float]:
    """Seconds of each epoch of Adam on the trainable parameters, batches seeded by ``seed``."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for x, y in data:
            for idx in torch.randperm(len(x), generator=gen).split(batch_size):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(forward(model, x[idx]), y[idx]).backward()
                opt.step()
        _sync(x.device)
        times.append(time.perf_counter() - t0)
    return times


def measure(k: int, *, per_class: int, domains: int, epochs: int, device: str, model: str = "minilm") -> dict:
    """Per-epoch seconds of the full model and of the cached prefix, and the samples per epoch."""
    from benchmarks.fastdata import materialize
    from benchmarks.models import MODELS, build_model
    from benchmarks.models.prefix_cache import FrozenPrefixCache
    from benchmarks.runner import resolve_device
    from benchmarks.scenarios import SCENARIOS, build_scenario

    w = Workload("prefix", "split_text_class_il", model, {"keep_experiences": domains, "train_per_class": per_class,
                                                          "test_per_class": 5}, {"frozen_layers": k})
    spec, dev = run_spec(w, device, True), resolve_device(device)
    scenario = build_scenario(spec.scenario_entry, SCENARIOS.get(spec.scenario_entry).params(**spec.scenario_params),
                              seed=0)
    data = [materialize(e.dataset.train(), dev)[:2] for e in scenario.benchmark.train_stream]
    out = {"samples": sum(len(x) for x, _ in data)}
    for mode in ("full", "cached"):
        torch.manual_seed(0)
        net = build_model(model, MODELS.get(model).params(frozen_layers=k), scenario.info).to(dev).train()
        cache = FrozenPrefixCache()
        forward = (lambda m, x: m(x)) if mode == "full" else cache.forward
        out[mode] = _epochs(net, forward, data, epochs, 32, seed=1)
    return out


def report(k: int, quick: bool, device: str) -> str:
    """Run ``measure`` and format the ratio of a warm cached epoch to a full epoch."""
    m = measure(k, per_class=10 if quick else 30, domains=2 if quick else 5, epochs=3, device=device)
    full, cached = m["full"], m["cached"]
    warm = min(cached[1:])
    return (f"MiniLM frozen below layer {k} of 6, {m['samples']} samples/epoch, batch 32\n"
            f"  full model, per epoch (s): {', '.join(f'{t:.2f}' for t in full)}\n"
            f"  frozen-prefix cache, per epoch (s): {', '.join(f'{t:.2f}' for t in cached)} (epoch 1 fills it)\n"
            f"  warm cached epoch / full epoch = {warm / min(full):.2f} ({min(full) / warm:.1f}x faster); "
            f"first cached epoch / full = {cached[0] / min(full):.2f}")
