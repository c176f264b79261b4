"""``python tests/fault_driver.py run ...`` = ``python -m benchmarks run ...`` with every run logged and paced.

For tests/test_faults.py: the real command line, suite and runner, with ``run_one`` wrapped (in this
process and, because spawned workers re-import this main module, in every worker) to
- append ``start <run_id> <pid>`` / ``end <run_id> <pid>`` to the file ``$CLBENCH_FAULT_LOG``, so a test
  counts executions across processes and knows which runs are in flight;
- sleep ``$CLBENCH_FAULT_SLOW`` seconds inside runs whose seed is in ``$CLBENCH_FAULT_SLOW_SEEDS``
  (comma-separated; default: every seed), so a signal finds them running;
- with ``$CLBENCH_FAULT_BARRIER`` = ``folder:n``, start the command only once n drivers have imported
  everything (each leaves a file in the folder), so concurrent drivers really run at the same time.
"""

from __future__ import annotations

import os
import sys
import time

from benchmarks.engine import runner

_run_one = runner.run_one


def _log(event: str, spec) -> None:
    path = os.environ.get("CLBENCH_FAULT_LOG")
    if path:
        with open(path, "a") as fh:  # one short line per write: appends do not interleave
            fh.write(f"{event} {spec.run_id} {os.getpid()}\n")


def run_one(spec):
    """run_one, logged and (for the chosen seeds) slowed down."""
    _log("start", spec)
    slow = float(os.environ.get("CLBENCH_FAULT_SLOW", "0"))
    seeds = os.environ.get("CLBENCH_FAULT_SLOW_SEEDS")
    if slow and (seeds is None or str(spec.seed) in seeds.split(",")):
        time.sleep(slow)
    result = _run_one(spec)
    _log("end", spec)
    return result


runner.run_one = run_one



def _barrier(spec: str) -> None:
    folder, n = spec.rsplit(":", 1)
    open(os.path.join(folder, str(os.getpid())), "w").close()
    deadline = time.time() + 600
    while len(os.listdir(folder)) < int(n) and time.time() < deadline:
        time.sleep(0.05)


if __name__ == "__main__":
    import signal

    from benchmarks.cli import main

    # As a terminal starts it: Ctrl-C handled even when pytest itself runs with SIGINT ignored (nohup, a
    # script's background job), which the CLI deliberately keeps ignoring (docs/faults.md).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if os.environ.get("CLBENCH_FAULT_BARRIER"):
        _barrier(os.environ["CLBENCH_FAULT_BARRIER"])
    sys.exit(main())
