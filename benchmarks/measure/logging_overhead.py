"""Overhead of run logging (benchmarks/engine/run_log.py): the same runs with logging off, TensorBoard,
W&B (offline) and both, interleaved, in one process with 1 torch thread.

``python -m benchmarks.measure.logging_overhead [--repeats 2] [--strategies naive,replay] [--out DIR]``
runs the quick suite's split-MNIST class-IL run (50% of the training data, 1 epoch) and prints, per
strategy and configuration, the median wall and process CPU seconds and whether the accuracy matrix
equals the one with logging off. W&B's service process (wandb-core) is another process: its CPU is not
in the process CPU column.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import replace

CONFIGS = {"off": (), "tensorboard": ("tensorboard",), "wandb": ("wandb",), "both": ("tensorboard", "wandb")}


def measure(strategies: list[str], repeats: int, out: str) -> list[str]:
    """One line per (strategy, configuration): median wall and CPU seconds over ``repeats``."""
    import torch

    from benchmarks.config.loader import load_suite
    from benchmarks.engine.runner import run_one

    torch.set_num_threads(1)
    os.environ.setdefault("WANDB_MODE", "offline")
    specs = [replace(s, device="cpu") for s in load_suite("quick")
             if s.scenario == "split_mnist_class_il" and s.strategy in strategies]
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    rows: dict[tuple[str, str], list] = {}
    for rep in range(repeats):
        for spec in specs:
            for name, log in CONFIGS.items():  # interleaved: machine load drifts alike for all four
                run = replace(spec, log=log, log_dir=os.path.join(out, f"logs{rep}") if log else None)
                t0, c0 = time.perf_counter(), time.process_time()
                result = run_one(run)
                times.setdefault((spec.strategy, name), []).append((time.perf_counter() - t0, time.process_time() - c0))
                if result["status"] != "ok":
                    raise RuntimeError(f"{spec.strategy} with log={log}: {result['error']}")
                rows.setdefault((spec.strategy, name), result["accuracy_matrix"])
    return [f"{s:8s} {n:12s} wall {statistics.median(t for t, _ in ts):6.2f} s  "
            f"cpu {statistics.median(c for _, c in ts):6.2f} s  same R as off: {rows[(s, n)] == rows[(s, 'off')]}"
            for (s, n), ts in times.items()]


def main(argv: list[str] | None = None) -> int:
    """Command line; prints the table."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.measure.logging_overhead", description=__doc__)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--strategies", default="naive,replay", help="comma-separated, from the quick suite")
    p.add_argument("--out", default=None, help="folder for the logs (default: a temporary folder)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for line in measure(args.strategies.split(","), args.repeats, args.out or tmp):
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
