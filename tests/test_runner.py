"""The runner end to end on the synthetic stream: results files, skip, failures, determinism, resume."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import tiny_specs

from benchmarks.cli import main
from benchmarks.config.loader import load_suite
from benchmarks.engine.guards import FiniteLossGuard, NonFiniteLossError
from benchmarks.engine.runner import run_one
from benchmarks.engine.suite import result_path, run_suite
from benchmarks.results.metrics import all_metrics
from benchmarks.results.store import load_results

TINY = str(Path(__file__).parent / "data" / "tiny_suite.toml")
REPO = Path(__file__).resolve().parents[1]


def test_results_file_has_the_stable_keys_and_provenance(tmp_path):
    specs = tiny_specs(["naive"])
    summary = run_suite(specs, tmp_path, progress=False)
    assert (summary.ok, summary.failed) == (1, 0)
    (result,) = load_results(tmp_path)
    for key in ("scenario", "strategy", "seed", "status", "accuracy_matrix", "metrics", "config",
                "train_time_s", "peak_memory_mb", "replay_memory", "provenance", "run_id"):
        assert key in result
    assert result["metrics"] == all_metrics(result["accuracy_matrix"], result["initial_accuracy"])
    assert len(result["initial_accuracy"]) == 2 and result["metrics"]["fwt"] is not None
    prov = result["provenance"]
    assert prov["device"] == "cpu" and "torch" in prov["packages"] and "avalanche-lib" in prov["packages"]
    assert result["config"]["train"]["batch_size"] == 16
    assert 0 < result["cpu_time_s"] and sum(result["train_time_s"]) < result["total_time_s"]  # run's CPU seconds


def test_completed_runs_are_skipped_on_rerun(tmp_path):
    specs = tiny_specs(["naive"], seeds=(0, 1))
    assert run_suite(specs, tmp_path, progress=False).ok == 2
    path = result_path(tmp_path, specs[0])
    mtime = path.stat().st_mtime_ns
    again = run_suite(specs, tmp_path, progress=False)
    assert (again.skipped, again.ok) == (2, 0)
    assert path.stat().st_mtime_ns == mtime


def test_same_seed_gives_identical_accuracy_matrix():
    (spec,) = tiny_specs(["ewc"])
    assert run_one(spec)["accuracy_matrix"] == run_one(spec)["accuracy_matrix"]


def test_failing_run_is_recorded_and_others_go_on(tmp_path):
    good, bad = tiny_specs(["naive", "lwf"])
    # Sabotage one run: an absurd learning rate makes the loss non-finite after a few steps.
    bad = type(bad)(**{**bad.__dict__, "train": {**bad.train, "lr": 1e30}})
    summary = run_suite([bad, good], tmp_path, progress=False)
    assert (summary.ok, summary.failed) == (1, 1)
    results = {r["strategy"]: r for r in load_results(tmp_path)}
    err = results["lwf"]["error"]
    assert results["lwf"]["status"] == "failed" and err["type"] == "NonFiniteLossError"
    assert err["experience"] == 0 and "lower the learning rate" in err["message"]
    assert results["naive"]["status"] == "ok"


def test_finite_loss_guard_raises_on_nan():
    import torch

    class Clock:
        train_exp_counter, train_exp_epochs, train_epoch_iterations = 3, 0, 7

    class Fake:
        loss = torch.tensor(math.nan)
        clock = Clock()

    with pytest.raises(NonFiniteLossError, match="experience 3"):
        FiniteLossGuard().before_backward(Fake())
    Fake.loss = torch.tensor(1.0)
    FiniteLossGuard().before_backward(Fake())  # finite: no error


def test_cli_config_error_exits_2_before_training(tmp_path, capsys):
    code = main(["run", "--suite", TINY, "--results", str(tmp_path), "--set", "train.epoch=3"])
    assert code == 2
    assert "unknown key 'epoch'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def _matrices(folder: Path) -> dict:
    return {(r["scenario"], r["strategy"], r["seed"]): r["accuracy_matrix"] for r in load_results(folder)}


def _cmd(results: Path) -> list[str]:
    return [sys.executable, "-m", "benchmarks", "run", "--suite", TINY, "--results", str(results), "--no-report"]


@pytest.mark.integration
def test_sigkill_at_several_points_then_resume_equals_uninterrupted_run(tmp_path):
    reference = tmp_path / "ref"
    subprocess.run(_cmd(reference), cwd=REPO, check=True, capture_output=True, timeout=300)
    expected = _matrices(reference)
    assert len(expected) == len(load_suite(TINY)) == 8
    resumed = tmp_path / "resumed"
    for n_done in (1, 4, 6):  # kill once at least n_done results exist (mid-run, mid-write possible)
        proc = subprocess.Popen(_cmd(resumed), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if len(list(resumed.rglob("*.json"))) >= n_done:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        for path in resumed.rglob("*.json"):
            json.loads(path.read_text())  # never a half-written file
    subprocess.run(_cmd(resumed), cwd=REPO, check=True, capture_output=True, timeout=300)
    assert _matrices(resumed) == expected
    assert len(list(resumed.rglob("*.json"))) == 8
    assert not list(resumed.rglob("*.tmp"))


def test_worker_output_carries_no_avalanche_deprecation_spam():
    code = (
        "import warnings, sys; warnings.simplefilter('default');"
        "from helpers import tiny_specs; from benchmarks.engine.runner import run_one;"
        "r = run_one(tiny_specs(['replay', 'gdumb'])[0]); assert r['status'] == 'ok', r['error'];"
        "r = run_one(tiny_specs(['replay', 'gdumb'])[1]); assert r['status'] == 'ok', r['error'];"
        "warnings.warn('a user warning still shows', UserWarning)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    proc = subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Call to deprecated function" not in proc.stderr, proc.stderr  # Avalanche's @deprecated
    assert "No loggers specified" not in proc.stderr, proc.stderr
    assert "a user warning still shows" in proc.stderr
