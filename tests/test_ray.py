"""The Ray executor on a real local Ray instance (2 CPUs, loopback): same results as the local executor,
lost workers retried or recorded, never lost; and a clear message when Ray is not installed."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from helpers import tiny_specs

from benchmarks.engine.executors import SerialExecutor, make_executor
from benchmarks.engine.ray_executor import task_resources
from benchmarks.engine.suite import result_path, run_suite

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="ray is not installed (pip install '.[ray]')"
)
RAY_ARGS = {"address": "local", "num_cpus": 2, "include_dashboard": False, "_node_ip_address": "127.0.0.1",
            "object_store_memory": 100 * 2**20}


def _expired(signum, frame):
    raise TimeoutError("test_ray: deadline exceeded (ray.init or a task hangs)")


@pytest.fixture(autouse=True)
def deadline():
    """Fail a test that hangs (ray.init or a lost task) instead of blocking the machine."""
    old = signal.signal(signal.SIGALRM, _expired)
    signal.alarm(240)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def ray_local():
    """One shared local Ray instance for the module; RayExecutor uses it and leaves it running."""
    import ray

    old = signal.signal(signal.SIGALRM, _expired)  # module fixtures start before the per-test deadline
    signal.alarm(120)
    try:
        ray.init(**RAY_ARGS)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    yield ray
    ray.shutdown()


@pytest.fixture
def one_thread():
    """Serial baseline with the threads a 1-CPU Ray task gets, so both do the same float arithmetic."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


# -- without Ray --------------------------------------------------------------------------------


def test_missing_ray_fails_fast_with_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install '\.\[ray\]'"):
        make_executor("ray", address=None)


def test_cli_without_ray_exits_2_with_hint(monkeypatch, tmp_path, capsys):
    from benchmarks.cli import main

    suite = tmp_path / "tiny.toml"
    suite.write_text('[suite]\nstrategies = ["naive"]\ndevice = "cpu"\n[scenarios.synthetic_class_il]\n')
    monkeypatch.setitem(sys.modules, "ray", None)
    code = main(["run", "--suite", str(suite), "--executor", "ray", "--results", str(tmp_path / "r"), "--no-report"])
    assert code == 2
    assert "pip install" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing ran


@pytest.mark.parametrize("device,gpus,expected", [
    ("cpu", 0, 0), ("cpu", 4, 0), ("cuda", 0, 1), ("cuda", 4, 1), ("auto", 0, 0), ("auto", 4, 1),
])
def test_task_resources_reserve_a_gpu_only_for_cuda_runs(device, gpus, expected):
    (spec,) = tiny_specs(["naive"])
    spec = dataclasses.replace(spec, device=device)
    assert task_resources(spec, 3, gpus) == {"num_cpus": 3, "num_gpus": expected}


# -- with Ray -----------------------------------------------------------------------------------
# The first test starts (and must stop) its own instance, so it runs before the module fixture.


@needs_ray
def test_ray_results_equal_local_and_own_instance_is_shut_down(tmp_path, one_thread):
    import ray

    from benchmarks.engine.ray_executor import RayExecutor

    assert not ray.is_initialized()
    specs = tiny_specs(["naive", "replay"], hparams={"replay": {"mem_size": 20}})
    local = run_suite(specs, tmp_path / "local", SerialExecutor(), progress=False)
    remote = run_suite(specs, tmp_path / "ray", RayExecutor(), progress=False)
    assert (local.ok, remote.ok, remote.failed) == (2, 2, 0)
    assert not ray.is_initialized()  # the executor shut down the instance it started
    for spec in specs:
        a, b = _load(result_path(tmp_path / "local", spec)), _load(result_path(tmp_path / "ray", spec))
        assert b["status"] == "ok", b["error"]
        assert len(b["accuracy_matrix"]) == 2 and b["accuracy_matrix"] == a["accuracy_matrix"]
        assert b["provenance"]["torch_threads"] == 1  # the task's CPUs
        assert "default_worker" not in b["provenance"]["command"]  # the driver's command, not Ray's
    again = run_suite(specs, tmp_path / "ray", RayExecutor(), progress=False)
    assert (again.skipped, again.ok) == (2, 0) and not ray.is_initialized()  # all done: no Ray started


def _attempts(flags: Path, spec) -> int:
    path = flags / f"{spec.run_id}.attempts"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _dying_run(flags: Path, die_on: dict[str, int]):
    """A run_fn whose worker process os._exit()s on the first ``die_on[run_id]`` attempts of a run.

    Attempts are counted in files (the worker is a different process each time it dies).
    """

    def run(spec):
        from benchmarks.engine.runner import run_one

        path = flags / f"{spec.run_id}.attempts"
        with path.open("a") as fh:
            fh.write("attempt\n")
        if len(path.read_text().splitlines()) <= die_on.get(spec.run_id, 0):
            os._exit(1)  # the worker process dies mid-run, as if killed
        return run_one(spec)

    return run


@needs_ray
def test_worker_death_is_retried_or_recorded_never_lost(ray_local, tmp_path):
    from benchmarks.engine.ray_executor import RayExecutor

    flaky, doomed, fine = tiny_specs(["naive"], seeds=(0, 1, 2))
    run_fn = _dying_run(tmp_path, {flaky.run_id: 1, doomed.run_id: 99})
    summary = run_suite([flaky, doomed, fine], tmp_path / "r", RayExecutor(max_retries=1, run_fn=run_fn),
                        progress=False)
    assert ray_local.is_initialized()  # a connection it did not start is left alone
    assert (summary.ok, summary.failed) == (2, 1)
    ok = _load(result_path(tmp_path / "r", flaky))
    assert ok["status"] == "ok" and _attempts(tmp_path, flaky) == 2  # died once, retried, finished
    lost = _load(result_path(tmp_path / "r", doomed))
    assert lost["status"] == "failed" and _attempts(tmp_path, doomed) == 2  # 1 + max_retries, then recorded
    assert lost["error"]["type"] == "WorkerCrashedError"
    assert "all 2 attempts" in lost["error"]["message"]
    assert lost["run_id"] == doomed.run_id and lost["accuracy_matrix"] == [] and lost["metrics"] == {}
    assert _load(result_path(tmp_path / "r", fine))["status"] == "ok" and _attempts(tmp_path, fine) == 1
    # Resume through Ray: a missing result is rerun, finished ones (and, with --skip-failed, failed ones) skipped.
    result_path(tmp_path / "r", flaky).unlink()
    again = run_suite([flaky, doomed, fine], tmp_path / "r", RayExecutor(), retry_failed=False, progress=False)
    assert (again.skipped, again.ok, again.failed) == (2, 1, 0)
    assert _load(result_path(tmp_path / "r", flaky))["accuracy_matrix"] == ok["accuracy_matrix"]


@needs_ray
def test_results_arrive_as_runs_finish_not_in_submission_order(ray_local, tmp_path):
    from benchmarks.engine.ray_executor import RayExecutor

    slow, fast = tiny_specs(["naive"], seeds=(0, 1))
    done = tmp_path / "fast_done"

    def run(spec):
        import time

        from benchmarks.engine.runner import run_one

        if spec.seed == fast.seed:
            result = run_one(spec)
            done.touch()
            return result
        deadline = time.time() + 120
        while not done.exists() and time.time() < deadline:  # the slow run ends after the fast one
            time.sleep(0.1)
        time.sleep(1.0)
        return run_one(spec)

    order = [spec.seed for spec, _ in RayExecutor(run_fn=run).submit_all([slow, fast])]
    assert order == [fast.seed, slow.seed]


@needs_ray
def test_run_gets_as_many_torch_threads_as_cpus(ray_local):
    from benchmarks.engine.ray_executor import RayExecutor

    (spec,) = tiny_specs(["naive"])
    for cpus in (2, 1, 2):  # workers are reused across runs: each run must set its own thread count
        ((_, result),) = RayExecutor(num_cpus=cpus).submit_all([spec])
        assert result["status"] == "ok", result["error"]
        assert result["provenance"]["torch_threads"] == cpus


@needs_ray
def test_task_that_raises_is_recorded_not_retried(ray_local, tmp_path):
    from benchmarks.engine.ray_executor import RayExecutor

    flags = tmp_path

    def broken(spec):
        with (flags / "calls").open("a") as fh:
            fh.write("call\n")
        raise ValueError("broken worker environment")

    (spec,) = tiny_specs(["naive"])
    ((_, result),) = RayExecutor(max_retries=2, run_fn=broken).submit_all([spec])
    assert result["status"] == "failed"
    assert result["error"]["type"] == "ValueError"
    assert result["error"]["message"] == "broken worker environment"
    assert "broken worker environment" in result["error"]["traceback"]
    assert len((flags / "calls").read_text().splitlines()) == 1


@needs_ray
def test_run_that_fits_no_node_fails_fast(ray_local):
    from benchmarks.engine.ray_executor import RayExecutor

    (spec,) = tiny_specs(["naive"])
    with pytest.raises(RuntimeError, match="needs 3 CPU"):
        list(RayExecutor(num_cpus=3).submit_all([spec]))
    cuda = dataclasses.replace(spec, device="cuda")
    with pytest.raises(RuntimeError, match="1 GPU"):
        list(RayExecutor().submit_all([cuda]))


@needs_ray
def test_ray_suite_claims_its_runs_and_leaves_held_ones_to_their_holder(ray_local, tmp_path):
    import threading

    from benchmarks.engine.claims import Claims
    from benchmarks.engine.ray_executor import RayExecutor
    from benchmarks.engine.runner import run_one
    from benchmarks.results.store import write_json_atomic

    mine, held = tiny_specs(["naive"], seeds=(0, 1))
    other = Claims(tmp_path / "r")  # another invocation (a live pid: this one) holds `held`
    assert other.acquire(held) is None

    def other_finishes():
        write_json_atomic(result_path(tmp_path / "r", held), run_one(held))
        other.release(held)

    timer = threading.Timer(1.0, other_finishes)
    timer.start()
    summary = run_suite([mine, held], tmp_path / "r", RayExecutor(), progress=False, poll_s=0.1)
    timer.join()
    assert (summary.ok, summary.failed, summary.elsewhere) == (1, 0, 1)
    assert _load(result_path(tmp_path / "r", mine))["status"] == "ok"
    assert not list((tmp_path / "r").rglob("*.claim"))  # the Ray run's claim was given back
