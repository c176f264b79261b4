"""Run a suite's grid on Ray: one task per run, results yielded to the driver as tasks finish.

Ray is optional (``pip install '.[ray]'``). Without an address a private local Ray instance is started
(and shut down at the end); with one (``auto``, ``host:port`` or ``ray://host:10001``) an existing
cluster is joined, and this checkout's ``benchmarks`` and ``strategies`` packages are shipped to it
(runtime_env ``py_modules``), so every node runs the driver's code; the nodes need only the
dependencies (torch, avalanche-lib, ...) installed.
The driver (benchmarks.engine.suite.run_suite) still owns the results folder: tasks only return results dicts,
so workers need no shared file system, and skip, resume and failure isolation are the local ones.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from benchmarks.config.spec import RunSpec

RAY_HINT = "the Ray executor needs Ray: pip install '.[ray]'  (or: pip install 'ray[default]')"
_SHIP_EXCLUDES = ["__pycache__", "*.pyc"]

RunFn = Callable[[RunSpec], dict]


def import_ray():
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"{RAY_HINT} ({exc})") from exc
    return ray


def task_resources(spec: RunSpec, num_cpus: int, cluster_gpus: float) -> dict[str, int]:
    """Ray resources of one run: ``num_cpus`` CPUs, and one GPU when the run will use CUDA.

    "auto" on a cluster with GPUs reserves one: Ray leaves CUDA_VISIBLE_DEVICES untouched for tasks
    that reserve no GPU, so an unreserved "auto" run would use a GPU that another run holds.
    """
    uses_cuda = spec.device == "cuda" or (spec.device == "auto" and cluster_gpus > 0)
    return {"num_cpus": num_cpus, "num_gpus": 1 if uses_cuda else 0}


def _task(spec: RunSpec, num_cpus: int, run_fn: RunFn | None) -> dict:
    """Body of a Ray task: limit torch to the CPUs Ray granted, then run (run_one never raises)."""
    from benchmarks.engine.threads import limit_threads

    limit_threads(num_cpus)  # torch and NumPy BLAS threads
    if run_fn is None:
        from benchmarks.engine.runner import run_one as run_fn
    return run_fn(spec)


class RayExecutor:
    """Run each spec as a Ray task with explicit resources; yield (spec, result) as tasks finish.

    Args:
        address: cluster to join ("auto", "host:port", "ray://host:10001"); None starts a private
            local instance. When Ray is already initialised in this process, that connection is used.
        num_cpus: CPUs reserved per run (also its torch threads).
        max_retries: how often a run is retried when its worker process or node dies; a run that
            raised is not retried (run_one records run errors itself).
        run_fn: what a task executes for a spec (default benchmarks.engine.runner.run_one).
    """

    def __init__(
        self, address: str | None = None, *, num_cpus: int = 1, max_retries: int = 2, run_fn: RunFn | None = None
    ) -> None:
        self._ray = import_ray()  # fail fast, before any suite work
        if num_cpus < 1:
            raise ValueError("num_cpus must be >= 1")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.address, self.num_cpus, self.max_retries, self.run_fn = address, num_cpus, max_retries, run_fn
        self._shipped = False

    def submit_all(self, specs: Iterable[RunSpec]) -> Iterator[tuple[RunSpec, dict]]:
        specs = list(specs)
        if not specs:  # a fully finished suite starts no Ray at all
            return
        started = self._connect()
        try:
            yield from self._run_all(specs)
        finally:
            if started:  # only what this executor started (for a cluster: our connection)
                self._ray.shutdown()

    def _connect(self) -> bool:
        """Join or start Ray; True when this call did (so it is ours to shut down)."""
        ray = self._ray
        self._shipped = False
        if ray.is_initialized():
            return False
        if self.address is None:
            # Loopback only: nothing outside this machine needs to reach a private instance.
            ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1")
        else:
            ray.init(address=self.address, runtime_env=_code_env())
            self._shipped = True
        return True

    def _run_all(self, specs: list[RunSpec]) -> Iterator[tuple[RunSpec, dict]]:
        ray = self._ray
        gpus = ray.cluster_resources().get("GPU", 0)
        resources = [task_resources(s, self.num_cpus, gpus) for s in specs]
        _check_fits(ray, resources)
        # CPU workers are reused across runs (like ProcessExecutor: one import of torch/avalanche);
        # a GPU run gets a fresh process so its GPU memory is released when it ends (Ray's GPU default).
        tasks = {0: ray.remote(_task), 1: ray.remote(max_calls=1)(_task)}
        pending = {}
        for spec, res in zip(specs, resources):
            ref = tasks[res["num_gpus"]].options(
                **res, max_retries=self.max_retries, retry_exceptions=False,
                name=f"{spec.scenario}/{spec.strategy}/seed{spec.seed}",
            ).remote(spec, self.num_cpus, self.run_fn)
            pending[ref] = spec
        try:
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                spec = pending.pop(ref)
                yield spec, self._fetch(ref, spec)
        finally:
            for ref in pending:  # interrupted: stop the runs still queued or running
                ray.cancel(ref, force=True)

    def _fetch(self, ref: Any, spec: RunSpec) -> dict:
        """The task's results dict; a task that raised, or whose worker kept dying, becomes a failed result."""
        from benchmarks.engine.runner import failed_result

        errors = self._ray.exceptions
        try:
            result = self._ray.get(ref)
        except errors.RayTaskError as exc:  # the task body raised: record the original error
            cause = exc.cause if exc.cause is not None else exc
            result = failed_result(spec, cause, traceback_text=str(exc))
        except (errors.WorkerCrashedError, errors.NodeDiedError) as exc:
            result = failed_result(spec, exc)
            result["error"]["message"] += f" [worker lost on all {1 + self.max_retries} attempts]"
        except errors.RayError as exc:  # e.g. killed for memory, runtime env setup failed
            result = failed_result(spec, exc)
        return self._driver_provenance(result)

    def _driver_provenance(self, result: dict) -> dict:
        """Record the driver's command (a worker's argv is Ray's), and its git state for shipped code."""
        prov = result["provenance"]
        prov["command"] = " ".join(sys.argv)
        if self._shipped:  # the shipped packages carry no .git: the driver's checkout is what ran
            from benchmarks.results.provenance import git_state

            prov["git_commit"], prov["git_dirty"] = git_state()
        return result


def _code_env() -> dict:
    """runtime_env shipping this checkout's packages, so cluster nodes run the driver's code."""
    import benchmarks
    import strategies

    return {"py_modules": [benchmarks, strategies], "excludes": list(_SHIP_EXCLUDES)}


def _check_fits(ray: Any, resources: list[dict[str, int]]) -> None:
    """Fail fast when no node can hold a run (Ray would otherwise wait forever for such a node)."""
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    for need in {tuple(sorted(r.items())) for r in resources}:
        cpus, gpus = dict(need)["num_cpus"], dict(need)["num_gpus"]
        if not any(n.get("CPU", 0) >= cpus and n.get("GPU", 0) >= gpus for n in nodes):
            biggest = max((n.get("CPU", 0), n.get("GPU", 0)) for n in nodes) if nodes else (0, 0)
            raise RuntimeError(
                f"a run needs {cpus} CPU(s) and {gpus} GPU(s) on one node, but the largest Ray node has "
                f"{biggest[0]:g} CPUs and {biggest[1]:g} GPUs; lower num_cpus, use --device cpu, or add such a node"
            )
