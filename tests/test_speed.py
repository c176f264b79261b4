"""The speed benchmark's machinery (not its numbers): timing modes run, Welch's test, device checks."""

from __future__ import annotations

import pytest
import torch

from benchmarks.measure import speed
from benchmarks.measure.equivalence import compare, welch


def test_welch_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    a, b = [0.91, 0.93, 0.92, 0.95], [0.90, 0.91, 0.89, 0.93, 0.92]
    t, df, p = welch(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert t == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue) and df == pytest.approx(ref.df)
    assert welch([0.5, 0.5], [0.5, 0.5])[0] == 0.0


def _result(strategy, fast, acc, seed):
    return {"status": "ok", "scenario": "s", "strategy": strategy, "seed": seed,
            "config": {"train": {"fast_data": fast}}, "metrics": {"average_accuracy": acc}}


def test_compare_groups_by_cell_and_path():
    results = [_result("naive", f, a, i) for i, (f, a) in enumerate(
        [(True, 0.2), (True, 0.4), (False, 0.3), (False, 0.5), (False, 0.4)])]
    (row,) = compare(results)
    assert row["n"] == 2 and row["fast"][0] == pytest.approx(0.3) and row["avalanche"][0] == pytest.approx(0.4)
    assert row["t"] < 0
    with pytest.raises(RuntimeError, match="failed"):
        compare([{**results[0], "status": "failed", "error": {"message": "boom"}}])


def test_all_three_modes_run_on_a_tiny_workload():
    w = speed.Workload("tiny", "synthetic_class_il", "mlp", {"n_classes": 4, "n_experiences": 2}, {"hidden": 16})
    assert speed.missing_parts(w) is None
    measured = speed.time_workload(w, "cpu", repeats=1)
    assert measured["samples"] == 4 * 16 and all(len(v) == 1 and v[0] > 0 for v in measured["times"].values())
    assert measured["iterations"] == 2  # 2 experiences of 32 samples, batches of 128: one batch each
    assert "(c)/(a)" in speed.format_row("tiny", measured)


def test_per_iteration_overheads_are_differences_to_the_plain_loop():
    measured = {"times": {"a": [1.0], "b": [3.0], "c": [1.5]}, "samples": 1000, "iterations": 100}
    row = speed.format_row("x", measured)
    assert "per iteration (100): a 10000 us; added to a: b +20000 us, c +5000 us" in row


def test_unregistered_parts_are_skipped_with_a_reason():
    assert "not registered" in speed.missing_parts(speed.Workload("x", "no_such_scenario", "mlp"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_cuda_without_a_gpu_is_refused_and_auto_runs_on_cpu(capsys):
    assert speed.main(["--device", "cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err
    assert speed.header("auto", 1).startswith("device cpu")
