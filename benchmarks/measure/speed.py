"""Speed benchmark: ``python -m benchmarks.measure.speed [--device auto] [--repeats 3] [--quick]``.

For each workload, in one process and interleaved (a, b, c, a, b, c, ...), the training time summed
over all experiences (1 epoch each, batch 128, Adam 1e-3), median over repeats:

  (a) a plain PyTorch loop over tensors already in memory (the floor);
  (b) Avalanche's default loop: the suite's Naive run with ``train.fast_data = false``;
  (c) the suite's path: the same run with ``train.fast_data = true`` (benchmarks/fastpath/template.py),
      materialisation of each experience included.

Workloads: the standard MLP on full split-MNIST class-IL, the text Transformer (``text_transformer``)
on split-text class-IL over a CLINC150 subset (skipped with a message when the text scenario or model
is not registered), and a 2x16 MLP on split-MNIST whose own work is negligible, so that its times are
each loop's per-batch cost (data, plugin calls): what a GPU does not shrink. Then the whole ``quick`` suite's wall time (serial).
``--check-accuracy`` instead runs the accuracy-equivalence check (benchmarks/measure/equivalence.py);
``--prefix-cache K`` times MiniLM with layers < K frozen, full vs cached prefix (speed_prefix.py).
This is a benchmark, not a test: numbers depend on the machine and its load (printed with them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from benchmarks.measure.workloads import Workload, missing_parts, run_spec, sync, workloads


def suite_time(w: Workload, device: str, fast: bool) -> float:
    """(b) or (c): training seconds of the suite's run, summed over experiences."""
    from benchmarks.engine.runner import run_one

    result = run_one(run_spec(w, device, fast))
    if result["status"] != "ok":
        raise RuntimeError(f"{w.label} (fast_data={fast}) failed: {result['error']['message']}")
    return sum(result["train_time_s"])


class PlainLoop:
    """(a): the same model, optimiser and batches in a bare loop over tensors already on the device."""

    def __init__(self, w: Workload, device: str, seed: int = 0) -> None:
        from benchmarks.engine.runner import resolve_device
        from benchmarks.fastpath.batches import materialize
        from benchmarks.scenarios import SCENARIOS, build_scenario

        spec = run_spec(w, device, True, seed)
        self.spec, self.device, self.seed = spec, resolve_device(device), seed
        params = SCENARIOS.get(spec.scenario_entry).params(**_tuples(spec.scenario_params))
        self.scenario = build_scenario(spec.scenario_entry, params, seed=seed)
        self.data = [materialize(e.dataset.train(), self.device)[:2] for e in self.scenario.benchmark.train_stream]
        self.samples = sum(len(x) for x, _ in self.data)

    def __call__(self) -> float:
        import torch

        from benchmarks.engine.runner import seed_everything
        from benchmarks.models import MODELS, build_model

        seed_everything(self.seed)
        name = self.spec.model["name"]
        mparams = MODELS.get(name).params(**_tuples({k: v for k, v in self.spec.model.items() if k != "name"}))
        model = build_model(name, mparams, self.scenario.info).to(self.device).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()
        sync(self.device)
        t0 = time.perf_counter()
        for x, y in self.data:
            for idx in torch.randperm(len(x), device=x.device).split(self.spec.train["batch_size"]):
                opt.zero_grad()
                loss_fn(model(x[idx]), y[idx]).backward()
                opt.step()
        sync(self.device)
        return time.perf_counter() - t0


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def time_workload(w: Workload, device: str, repeats: int) -> dict[str, Any]:
    """Interleaved repeats of (a), (b), (c); per-mode lists of seconds and the samples per run."""
    plain = PlainLoop(w, device)
    times: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    for _ in range(repeats):
        times["a"].append(plain())
        times["b"].append(suite_time(w, device, fast=False))
        times["c"].append(suite_time(w, device, fast=True))
    bs = w.batch_size
    return {"times": times, "samples": plain.samples, "iterations": sum(-(-len(x) // bs) for x, _ in plain.data)}


def format_row(label: str, measured: dict[str, Any]) -> str:
    """Medians, ratios (c)/(a) and (b)/(c), samples/second and the raw repeats."""
    times = measured["times"]
    med = {k: statistics.median(v) for k, v in times.items()}
    n = measured["samples"]

    def paired(top: str, bottom: str) -> float:  # robust to load drifting between repeats
        return statistics.median(t / b for t, b in zip(times[top], times[bottom]))

    raw = "  ".join(f"{k}=[{', '.join(f'{t:.2f}' for t in v)}]" for k, v in times.items())
    return (
        f"{label}\n"
        f"  train time (median): (a) plain {med['a']:.2f} s | (b) avalanche {med['b']:.2f} s | "
        f"(c) suite {med['c']:.2f} s    over {n} samples\n"
        f"  (c)/(a) = {med['c'] / med['a']:.2f}x   (b)/(c) = {med['b'] / med['c']:.2f}x   "
        f"(medians of same-repeat ratios: {paired('c', 'a'):.2f}x, {paired('b', 'c'):.2f}x)\n"
        f"  samples/s: a {n / med['a']:.0f}, b {n / med['b']:.0f}, c {n / med['c']:.0f}\n"
        f"{_per_iteration(med, measured.get('iterations'))}"
        f"  repeats (s): {raw}"
    )


def _per_iteration(med: dict[str, float], iterations: int | None) -> str:
    """Time per training iteration and what (b) and (c) add to the plain loop's: the loop's own cost.

    That added cost is CPU work per mini-batch (data loading, plugin calls) which a GPU does not
    shrink, so it bounds the speed-up over Avalanche that a GPU run can show.
    """
    if not iterations:
        return ""
    us = {k: v / iterations * 1e6 for k, v in med.items()}
    return (f"  per iteration ({iterations}): a {us['a']:.0f} us; added to a: b {us['b'] - us['a']:+.0f} us, "
            f"c {us['c'] - us['a']:+.0f} us\n")


def time_quick_suite(device: str, threads: int, fast: bool) -> tuple[float, str]:
    """Wall time of the whole ``quick`` suite run serially into a throw-away folder."""
    from benchmarks.config.loader import load_suite
    from benchmarks.engine.executors import SerialExecutor
    from benchmarks.engine.suite import run_suite

    specs = load_suite("quick", [f"train.fast_data={'true' if fast else 'false'}"], device=device)
    with tempfile.TemporaryDirectory(prefix="clbench-speed-") as tmp:
        t0 = time.perf_counter()
        summary = run_suite(specs, Path(tmp), SerialExecutor(threads), progress=False)
        return time.perf_counter() - t0, summary.line()


def header(device: str, threads: int) -> str:
    """What the numbers depend on: device, threads, load."""
    import torch

    from benchmarks.engine.runner import resolve_device
    from benchmarks.results.provenance import device_name

    dev = str(resolve_device(device))
    return (f"device {dev} ({device_name(dev)}), torch {torch.__version__}, {threads} torch thread(s), "
            f"{os.cpu_count()} cores, {load()}")


def load() -> str:
    """The machine's 1/5/15-minute load averages (other processes slow every number down)."""
    return "load average " + (" ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.measure.speed", description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto = CUDA when torch sees a GPU, else CPU (data then lives on the GPU)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats per mode (median reported)")
    p.add_argument("--quick", action="store_true", help="20%% of MNIST, a smaller text subset, no suite timing")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the suite's default per run is 1)")
    p.add_argument("--suite", choices=("none", "fast", "both"), default=None,
                   help="time the quick suite: with the fast path, with both paths, or not (default: "
                        "fast, none with --quick)")
    p.add_argument("--prefix-cache", type=int, default=None, metavar="K",
                   help="instead: MiniLM epoch time with layers < K frozen, full vs cached prefix")
    p.add_argument("--check-accuracy", action="store_true",
                   help="instead: fast vs Avalanche path accuracies over seeds (benchmarks/measure/equivalence.py)")
    p.add_argument("--seeds", type=int, default=5, help="seeds per cell of --check-accuracy")
    p.add_argument("--train-fraction", type=float, default=0.2, help="MNIST fraction for --check-accuracy")
    p.add_argument("--jobs", type=int, default=1, help="parallel runs for --check-accuracy")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; prints the report, returns 0 (or 2 for a bad device)."""
    import torch

    args = _parser().parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no CUDA GPU; use --device auto or cpu", file=sys.stderr)
        return 2
    if args.check_accuracy:
        from benchmarks.measure.equivalence import main as check

        return check(seeds=args.seeds, train_fraction=args.train_fraction, device=args.device, jobs=args.jobs,
                     threads=args.threads)
    print(header(args.device, args.threads), flush=True)
    if args.prefix_cache is not None:
        from benchmarks.measure.speed_prefix import report

        print(report(args.prefix_cache, args.quick, args.device))
        return 0
    for w in workloads(args.quick):
        why = missing_parts(w)
        if why:
            print(f"{w.label}: skipped ({why})", flush=True)
            continue
        print(format_row(w.label, time_workload(w, args.device, args.repeats)), flush=True)
    suite = args.suite or ("none" if args.quick else "fast")
    for fast in {"none": (), "fast": (True,), "both": (True, False)}[suite]:
        seconds, line = time_quick_suite(args.device, args.threads, fast)
        print(f"quick suite, fast_data={str(fast).lower()}: {seconds:.1f} s wall ({line})", flush=True)
    print(f"at the end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
