"""Code paths that differ on CUDA: CPU stand-ins where a device argument shows the fix, real CUDA
checks where a GPU is present (skipped otherwise)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers import tiny_specs

from benchmarks.engine import runner

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on a GPU machine)")


def test_peak_memory_counter_is_reset_only_for_a_cuda_device(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: calls.append(device))
    runner._reset_peak_memory(torch.device("cpu"))
    assert calls == []  # CPU runs never touch CUDA
    runner._reset_peak_memory(torch.device("cuda"))
    assert calls == [torch.device("cuda")]


def test_every_run_resets_the_peak_memory_counter_for_its_device(monkeypatch):
    seen = []
    monkeypatch.setattr(runner, "_reset_peak_memory", seen.append)
    (spec,) = tiny_specs(["naive"])
    for _ in range(2):  # one process, several runs (SerialExecutor, reused worker processes)
        assert runner.run_one(spec)["status"] == "ok"
    assert seen == [torch.device("cpu")] * 2


@CUDA
def test_cuda_peak_memory_is_the_runs_own_not_the_process_peak():
    big = torch.empty(512 * 2**20, dtype=torch.uint8, device="cuda")  # 512 MiB peak before the run
    del big
    before = torch.cuda.memory_allocated() / 2**20  # tensors other tests left alive count in both
    (spec,) = tiny_specs(["naive"])
    result = runner.run_one(dataclasses.replace(spec, device="cuda"))
    assert result["status"] == "ok", result["error"]
    assert result["peak_memory_mb"]["cuda"] is not None
    assert result["peak_memory_mb"]["cuda"] < before + 256  # the tiny synthetic run needs a few MiB


def _resetter(device: str):
    """A ResetModelPlugin and a stand-in strategy over a small model on ``device`` (built up front:
    building a model draws from the generators)."""
    from types import SimpleNamespace

    from strategies.plugins.reset import ResetModelPlugin

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).to(device)
    plugin = ResetModelPlugin(model, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    strategy = SimpleNamespace(model=model, optimizer=optimizer, clock=SimpleNamespace(train_exp_counter=1))
    return lambda: plugin.before_training_exp(strategy)


def test_model_reset_leaves_the_cpu_generator_as_it_was():
    reset = _resetter("cpu")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    reset()
    assert torch.equal(torch.rand(3), expected)


@CUDA
def test_model_reset_leaves_the_cuda_generator_as_it_was():
    reset = _resetter("cuda")
    torch.manual_seed(123)
    expected = torch.rand(3, device="cuda")
    torch.manual_seed(123)
    reset()
    assert torch.equal(torch.rand(3, device="cuda"), expected)


def test_cpu_runs_do_not_touch_cuda_memory_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty"))
    runner._release_device_memory("cpu")
    assert calls == []
    runner._release_device_memory("cuda:0")
    assert calls == ["empty"]
