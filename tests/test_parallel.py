"""--jobs N gives the same results as a serial run: same accuracy matrices, same thread count per run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks.config.loader import load_suite
from benchmarks.engine.executors import DEFAULT_THREADS, ProcessExecutor, SerialExecutor, make_executor
from benchmarks.engine.suite import run_suite

TINY = Path(__file__).parent / "data" / "tiny_suite.toml"


def _matrices(folder: Path) -> dict[str, dict]:
    """run_id -> (status, accuracy matrix, torch threads) of every results file under ``folder``."""
    out = {}
    for path in folder.rglob("*.json"):
        r = json.loads(path.read_text())
        out[r["run_id"]] = (r["status"], r["accuracy_matrix"], r["provenance"]["torch_threads"])
    return out


def test_two_jobs_give_the_serial_accuracy_matrices(tmp_path):
    specs = load_suite(str(TINY))
    assert len(specs) == 8
    serial = run_suite(specs, tmp_path / "serial", SerialExecutor(), progress=False)
    parallel = run_suite(specs, tmp_path / "jobs2", ProcessExecutor(2), progress=False)
    assert serial.ok == parallel.ok == len(specs)
    a, b = _matrices(tmp_path / "serial"), _matrices(tmp_path / "jobs2")
    assert a.keys() == b.keys() == {s.run_id for s in specs}
    for run_id in a:
        assert a[run_id] == b[run_id], run_id  # bit-identical floats, same status, same thread count
    assert {v[2] for v in a.values()} == {DEFAULT_THREADS}


def test_serial_runs_use_the_thread_setting_and_restore_the_callers():
    (spec, *_) = load_suite(str(TINY))
    before = torch.get_num_threads()
    ((_, result),) = list(SerialExecutor(threads=2).submit_all([spec]))
    assert result["status"] == "ok"
    assert result["provenance"]["torch_threads"] == 2
    assert torch.get_num_threads() == before


def test_thread_and_job_counts_are_checked():
    with pytest.raises(ValueError, match="--threads"):
        SerialExecutor(threads=0)
    with pytest.raises(ValueError, match="--jobs"):
        ProcessExecutor(0)
    with pytest.warns(UserWarning, match="compete"):
        ProcessExecutor(2, threads=1024)
    assert isinstance(make_executor("local", 1, threads=3), SerialExecutor)
    assert make_executor("local", 2, threads=1).threads == 1
