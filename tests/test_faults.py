"""Faults a user meets, injected: Ctrl-C / SIGTERM, bad --results, two invocations on one results folder,
control characters in a data file, a killed worker, a full disk, corrupted cache entries, a truncated
result. Each test checks that nothing finished is lost and that the message says what to do."""

from __future__ import annotations

import errno
import functools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from helpers import tiny_specs

from benchmarks.cli import main
from benchmarks.config.loader import load_suite
from benchmarks.data.records import read_records
from benchmarks.data.text import TextDataError
from benchmarks.engine import runner
from benchmarks.engine.claims import Claims, _pid_alive
from benchmarks.engine.executors import ProcessExecutor, SerialExecutor
from benchmarks.engine.suite import ResultsWriteError, SuiteInterrupted, result_path, run_suite
from benchmarks.results.store import ResultsFolderError, check_results_folder, load_results, write_json_atomic

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "tests" / "data" / "tiny_suite.toml")  # 8 runs of a synthetic stream
DRIVER = REPO / "tests" / "fault_driver.py"
DEADLINE_S = 600  # the machine may be loaded: a generous bound, never reached when things work


# -- helpers --------------------------------------------------------------------------------------


def _driver(results: Path, log: Path, *args: str, **env: str) -> subprocess.Popen:
    """The real CLI on the tiny suite, runs logged (tests/fault_driver.py)."""
    cmd = [sys.executable, str(DRIVER), "run", "--suite", TINY, "--results", str(results), "--no-report", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO), "CLBENCH_FAULT_LOG": str(log), **env}
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _events(log: Path) -> tuple[Counter, Counter, set[int]]:
    """(starts per run id, ends per run id, pids) of a driver log."""
    starts, ends, pids = Counter(), Counter(), set()
    lines = log.read_text().splitlines() if log.exists() else []
    for line in lines:
        event, run_id, pid = line.split()
        (starts if event == "start" else ends)[run_id] += 1
        pids.add(int(pid))
    return starts, ends, pids


def _results(folder: Path) -> dict[str, dict]:
    """run_id -> results dict of every results file below ``folder`` (each must parse: never half-written)."""
    return {r["run_id"]: r for r in load_results(folder)} if folder.exists() else {}


def _leftovers(folder: Path) -> list[Path]:
    """Claims and temp files left behind."""
    return [p for p in folder.rglob("*") if p.suffix in (".claim", ".tmp", ".break")]


@pytest.fixture
def no_runs(monkeypatch):
    """Fail the test if any run starts."""
    def refuse(spec):
        raise AssertionError(f"a run started: {spec.run_id}")
    monkeypatch.setattr(runner, "run_one", refuse)


# -- Ctrl-C and SIGTERM ---------------------------------------------------------------------------


def _interrupt(tmp_path: Path, signum: int, jobs: int) -> None:
    results, log = tmp_path / "r", tmp_path / "log"
    # Seed-0 runs finish at once; seed-1 runs sleep 300 s, so the signal finds `jobs` of them running.
    proc = _driver(results, log, "--jobs", str(jobs), CLBENCH_FAULT_SLOW="300", CLBENCH_FAULT_SLOW_SEEDS="1")
    deadline = time.time() + DEADLINE_S
    while True:
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        starts, ends, pids = _events(log)
        running = set(starts) - set(ends)
        if ends and len(running) == jobs and len(_results(results)) == len(ends):
            break
        time.sleep(0.2)
    os.kill(proc.pid, signum)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err  # 130 for SIGINT, 143 for SIGTERM
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    match = re.fullmatch(r"interrupted: (\d+) runs finished, (\d+) in flight discarded; run the same command to "
                         r"resume \(python -m benchmarks run --suite .* --jobs \d\)", last)
    assert match, last
    assert (int(match[1]), int(match[2])) == (len(ends), jobs)
    kept = _results(results)
    assert set(kept) == set(ends) and all(r["status"] == "ok" for r in kept.values())  # in flight: no file
    assert _leftovers(results) == []  # claims given back, no temp file
    time.sleep(1.0)
    assert not any(_pid_alive(pid) for pid in pids - {proc.pid}), "a worker survived the driver"
    # Resume: the finished runs are kept as they are, the rest run.
    mtimes = {p: p.stat().st_mtime_ns for p in results.rglob("*.json")}
    again = run_suite(load_suite(TINY), results, progress=False)
    assert (again.skipped, again.ok, again.failed) == (len(ends), 8 - len(ends), 0)
    assert all(p.stat().st_mtime_ns == m for p, m in mtimes.items())


@pytest.mark.parametrize("signum,jobs", [(signal.SIGINT, 1), (signal.SIGTERM, 2)])
def test_signal_stops_the_suite_cleanly_and_resume_completes_it(tmp_path, signum, jobs):
    _interrupt(tmp_path, signum, jobs)


@pytest.mark.integration
@pytest.mark.parametrize("signum,jobs", [(signal.SIGTERM, 1), (signal.SIGINT, 2)])
def test_signal_stops_the_suite_cleanly_other_combinations(tmp_path, signum, jobs):
    _interrupt(tmp_path, signum, jobs)


def test_ctrl_c_in_process_raises_suite_interrupted_and_keeps_finished(tmp_path, monkeypatch):
    specs = tiny_specs(["naive"], seeds=(0, 1, 2))
    real = runner.run_one

    def second_is_interrupted(spec):
        if spec.seed == 1:
            raise KeyboardInterrupt
        return real(spec)

    monkeypatch.setattr(runner, "run_one", second_is_interrupted)
    with pytest.raises(SuiteInterrupted) as info:
        run_suite(specs, tmp_path, progress=False)
    assert (info.value.finished, info.value.in_flight, info.value.exit_code) == (1, 1, 130)
    assert set(_results(tmp_path)) == {specs[0].run_id} and _leftovers(tmp_path) == []


# -- --results ------------------------------------------------------------------------------------


def _run_cli(results: Path, *args: str) -> int:
    return main(["run", "--suite", TINY, "--results", str(results), "--no-report", *args])


def test_results_path_that_is_a_file_is_refused_before_any_run(tmp_path, capsys, no_runs):
    path = tmp_path / "results.txt"
    path.write_text("mine")
    assert _run_cli(path) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "is a file, not a folder" in err and "--results results" in err
    assert path.read_text() == "mine"
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "tiny_suite").write_text("")  # the suite's folder is a file
    assert _run_cli(tmp_path / "r") == 2
    assert "tiny_suite is a file" in capsys.readouterr().err


def test_unwritable_results_folder_is_refused_before_any_run(tmp_path, capsys, monkeypatch, no_runs):
    from benchmarks.results import store

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(store.tempfile, "mkstemp", denied)
    assert _run_cli(tmp_path / "r") == 2
    err = capsys.readouterr().err
    assert f"--results {tmp_path / 'r'}: cannot write to {tmp_path} (Permission denied)" in err
    assert "fix its permissions" in err


def test_read_only_file_system_is_refused(tmp_path, capsys, no_runs):
    try:
        os.mkdir("/sys/clbench-probe")
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EPERM, errno.EACCES):
            pytest.skip(f"/sys is not read-only here ({exc})")
    else:
        os.rmdir("/sys/clbench-probe")
        pytest.skip("/sys is writable here")
    assert _run_cli(Path("/sys/clbench-results")) == 2
    assert "--results /sys/clbench-results: cannot write to /sys (" in capsys.readouterr().err


def _fake_result(path: Path, suite: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema_version": 1, "run_id": "x", "suite": suite, "status": "ok"}))


def test_suite_folder_passed_as_results_folder_is_refused(tmp_path, capsys, no_runs):
    _fake_result(tmp_path / "results" / "default" / "a__naive__seed0__1.json", "default")
    assert _run_cli(tmp_path / "results" / "default") == 2
    err = capsys.readouterr().err
    assert "holds results files directly" in err and f"--results {tmp_path / 'results'}" in err


def test_another_suites_results_in_the_suite_folder_are_refused(tmp_path, capsys, no_runs):
    _fake_result(tmp_path / "r" / "tiny_suite" / "a__naive__seed0__1.json", "default")
    assert _run_cli(tmp_path / "r") == 2
    assert "holds results of suite 'default'" in capsys.readouterr().err


def test_foreign_layout_is_refused(tmp_path, capsys, no_runs):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.py").write_text("print(1)\n")
    (tmp_path / "notes.txt").write_text("x")
    assert _run_cli(tmp_path) == 2
    err = capsys.readouterr().err
    assert "not clbench results (notes.txt, src/)" in err and "new or empty folder" in err


def test_results_folders_that_are_fine(tmp_path):
    _fake_result(tmp_path / "other_suite" / "a.json", "other_suite")  # another suite beside
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "index.html").write_text("<html>")
    _fake_result(tmp_path / "own" / "own" / "b.json", "own")  # a nested results folder with its report
    (tmp_path / "own" / "report").mkdir()
    (tmp_path / "tiny" / ".claims").mkdir(parents=True)
    (tmp_path / "tiny" / "c.json").write_text('{"schema_version": 1, "ru')  # truncated: run again
    check_results_folder(tmp_path, "tiny")
    check_results_folder(tmp_path / "new" / "deep", "tiny")
    assert not (tmp_path / "new").exists() and not list(tmp_path.glob(".clbench-probe*"))  # nothing made
    with pytest.raises(ResultsFolderError, match="index.html is a file"):
        check_results_folder(tmp_path / "report" / "index.html" / "sub", "tiny")


def test_truncated_result_file_is_run_again(tmp_path):
    first, second = tiny_specs(["naive"], seeds=(0, 1))
    run_suite([first, second], tmp_path, progress=False)
    kept = result_path(tmp_path, first).read_text()
    path = result_path(tmp_path, second)
    path.write_text(path.read_text()[:100])  # e.g. copied by a tool that died
    again = run_suite([first, second], tmp_path, progress=False)
    assert (again.skipped, again.ok) == (1, 1)
    assert json.loads(path.read_text())["status"] == "ok" and result_path(tmp_path, first).read_text() == kept


# -- claims: two invocations on one results folder -------------------------------------------------


def test_two_concurrent_invocations_execute_each_run_once(tmp_path):
    results, logs = tmp_path / "r", [tmp_path / "log_a", tmp_path / "log_b"]
    # Both start together (a barrier after the imports) and every run takes >= 1 s, so they overlap throughout.
    (tmp_path / "barrier").mkdir()
    procs = [_driver(results, log, "--jobs", "1", CLBENCH_FAULT_SLOW="1", CLBENCH_FAULT_BARRIER=f"{tmp_path / 'barrier'}:2")
             for log in logs]
    outs = [p.communicate(timeout=DEADLINE_S) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    starts = sum((_events(log)[0] for log in logs), Counter())
    assert len(starts) == 8 and set(starts.values()) == {1}, starts  # each run executed once in total
    counts = []
    for out, err in outs:
        line = re.search(r"8 runs: (\d+) already done, (\d+) ok, (\d+) failed(?:, (\d+) run by another process "
                         r"\((\d+) failed\))?", out)
        assert line, out
        skipped, ok, failed, elsewhere, elsewhere_failed = (int(g or 0) for g in line.groups())
        assert failed == elsewhere_failed == 0 and skipped + ok + elsewhere == 8, out
        counts.append(ok)
    assert sum(counts) == 8 and min(counts) >= 1, counts  # the work was shared, each run done once
    assert all(r["status"] == "ok" for r in _results(results).values()) and len(_results(results)) == 8
    assert _leftovers(results) == []


def test_claim_is_exclusive_and_released(tmp_path):
    (spec,) = tiny_specs(["naive"])
    mine, theirs = Claims(tmp_path), Claims(tmp_path)
    assert mine.acquire(spec) is None
    holder = theirs.acquire(spec)
    assert holder is not None and holder.pid == os.getpid() and str(os.getpid()) in holder.holder()
    mine.release(spec)
    assert not mine.path(spec).exists() and theirs.acquire(spec) is None


def _write_claim(path: Path, host: str, pid: int, age_s: float = 0.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": host, "pid": pid, "started_at": time.time(), "token": "t", "run": "x"}))
    if age_s:
        then = time.time() - age_s
        os.utime(path, (then, then))


def test_stale_claims_are_recovered(tmp_path):
    (spec,) = tiny_specs(["naive"])
    claims = Claims(tmp_path, stale_after_s=600)
    dead = _dead_pid()
    _write_claim(claims.path(spec), claims.host, dead)  # this host, dead process: recovered at once
    assert claims.acquire(spec) is None
    claims.release(spec)
    _write_claim(claims.path(spec), "other-host", 1)  # another host, fresh heartbeat: held
    assert claims.acquire(spec).host == "other-host"
    _write_claim(claims.path(spec), "other-host", 1, age_s=601)  # heartbeat too old: recovered
    assert claims.acquire(spec) is None
    claims.release(spec)
    claims.path(spec).write_text("")  # created, never written: held while young, recovered when old
    assert claims.acquire(spec) is not None
    then = time.time() - 120
    os.utime(claims.path(spec), (then, then))
    assert claims.acquire(spec) is None


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_heartbeat_renews_held_claims_and_release_spares_a_takeover(tmp_path):
    (spec,) = tiny_specs(["naive"])
    with Claims(tmp_path, heartbeat_s=0.05) as claims:
        claims.acquire(spec)
        then = time.time() - 500
        os.utime(claims.path(spec), (then, then))
        time.sleep(0.5)
        assert time.time() - claims.path(spec).stat().st_mtime < 5
        _write_claim(claims.path(spec), "other-host", 1)  # we were judged stale and taken over
    assert json.loads(claims.path(spec).read_text())["host"] == "other-host"  # not removed by our release


def test_run_held_by_a_live_process_is_skipped_and_awaited(tmp_path, monkeypatch, capsys):
    mine, held = tiny_specs(["naive"], seeds=(0, 1))
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        claims = Claims(tmp_path)
        _write_claim(claims.path(held), claims.host, holder.pid)
        ran = []
        real = runner.run_one
        monkeypatch.setattr(runner, "run_one", lambda spec: ran.append(spec.run_id) or real(spec))

        def other_finishes():  # the holder writes its result, then gives the claim back
            time.sleep(1.0)
            write_json_atomic(result_path(tmp_path, held), real(held))
            claims.path(held).unlink()

        thread = threading.Thread(target=other_finishes)
        thread.start()
        summary = run_suite([mine, held], tmp_path, progress=False, poll_s=0.1)
        thread.join()
    finally:
        holder.kill()
        holder.wait()
    assert ran == [mine.run_id]
    assert (summary.ok, summary.failed, summary.elsewhere, summary.elsewhere_failed) == (1, 0, 1, 0)
    assert "1 run by another process (0 failed)" in summary.line()
    out = capsys.readouterr().out
    assert f"held by another process ({claims.host} pid {holder.pid}" in out and "waiting for 1 run(s)" in out


def test_run_of_a_holder_that_dies_is_taken_over(tmp_path, monkeypatch):
    (spec,) = tiny_specs(["naive"])
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    claims = Claims(tmp_path)
    _write_claim(claims.path(spec), claims.host, holder.pid)
    threading.Timer(1.0, holder.kill).start()  # dies without a result
    summary = run_suite([spec], tmp_path, progress=False, poll_s=0.1)
    holder.wait()
    assert (summary.ok, summary.elsewhere) == (1, 0) and _results(tmp_path)[spec.run_id]["status"] == "ok"


# -- control characters in a data file --------------------------------------------------------------


def test_nul_byte_in_a_csv_is_refused_with_file_and_line(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"text,label\nturn on the lights,on\nturn\x00off,off\n")
    with pytest.raises(TextDataError, match=re.escape(f"{path}:3: control character U+0000 (NUL) at column 5")) as e:
        read_records(path)
    assert "binary or corrupted" in str(e.value) and "re-export" in str(e.value)


def test_utf16_without_bom_and_windows_bytes_get_the_encoding_fix(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes("text,label\nlights on,on\n".encode("utf-16-le"))
    with pytest.raises(TextDataError, match="encoding = 'utf-16'"):
        read_records(path)
    path.write_bytes(b"text,label\n\x93lights\x94,on\n")
    with pytest.raises(TextDataError, match=r"data.csv:2: control character U\+0093.*encoding = 'cp1252'"):
        read_records(path, encoding="latin-1")
    assert read_records(path, encoding="cp1252").rows[0]["text"] == "\u201clights\u201d"


def test_tabs_and_line_breaks_in_quoted_fields_are_allowed(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b'text,label\r\n"two\tcolumns",a\r\n"two\nlines",b\r\n')
    records = read_records(path)
    assert [r["text"] for r in records.rows] == ["two\tcolumns", "two\nlines"] and records.lines == (2, 3)


def test_control_character_as_a_json_escape_is_refused(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "ok\\tfine", "label": "a"}\n{"text": "bad\\u0007", "label": "b"}\n')
    with pytest.raises(TextDataError, match=re.escape(f"{path}:2: field 'text' holds control character U+0007")):
        read_records(path)


def test_nul_byte_in_a_suites_data_fails_check_before_training(tmp_path, capsys):
    data = tmp_path / "intents.csv"
    data.write_bytes((REPO / "tests" / "data" / "own_intents.csv").read_bytes().replace(b"\n", b"\x00\n", 1))
    suite = REPO / "benchmarks" / "suites" / "examples" / "own_csv.toml"
    code = main(["check", "--suite", str(suite), "--set", f"scenarios.own_intents.path={data}"])
    err = capsys.readouterr().err
    assert code == 2 and f"{data}:1: control character U+0000 (NUL)" in err, err


# -- neighbours: killed worker, full disk, corrupted caches ------------------------------------------


def _dying_run(flags: Path, die_on: dict[str, int], spec):
    """run_one, but the worker SIGKILLs itself on the first ``die_on[run_id]`` attempts (counted in files)."""
    path = flags / f"{spec.run_id}.attempts"
    with path.open("a") as fh:
        fh.write("attempt\n")
    if len(path.read_text().splitlines()) <= die_on.get(spec.run_id, 0):
        os.kill(os.getpid(), signal.SIGKILL)
    from benchmarks.engine.runner import run_one

    return run_one(spec)


def test_killed_worker_is_retried_or_recorded_and_nothing_finished_is_lost(tmp_path):
    done, flaky, doomed = tiny_specs(["naive"], seeds=(0, 1, 2))
    run_suite([done], tmp_path / "r", SerialExecutor(), progress=False)
    before = result_path(tmp_path / "r", done).read_text()
    run_fn = functools.partial(_dying_run, tmp_path, {flaky.run_id: 1, doomed.run_id: 99})
    summary = run_suite([done, flaky, doomed], tmp_path / "r", ProcessExecutor(1, max_retries=1, run_fn=run_fn),
                        progress=False)
    assert (summary.skipped, summary.ok, summary.failed) == (1, 1, 1)
    assert result_path(tmp_path / "r", done).read_text() == before
    results = _results(tmp_path / "r")
    assert results[flaky.run_id]["status"] == "ok"  # died once, retried
    err = results[doomed.run_id]["error"]
    assert results[doomed.run_id]["status"] == "failed" and err["type"] == "WorkerDiedError"
    assert "on all 2 attempt(s)" in err["message"] and "Run the same command again" in err["message"]
    assert _leftovers(tmp_path / "r") == []


def test_disk_full_stops_the_suite_keeps_finished_and_says_what_to_do(tmp_path, monkeypatch, capsys):
    from benchmarks.engine import suite

    specs = tiny_specs(["naive"], seeds=(0, 1, 2))
    real, writes = suite.write_json_atomic, []

    def full_after_one(path, data):
        writes.append(path)
        if len(writes) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(suite, "write_json_atomic", full_after_one)
    with pytest.raises(ResultsWriteError, match="No space left on device.*free disk space.*run the same command"):
        run_suite(specs, tmp_path, progress=False)
    assert set(_results(tmp_path)) == {specs[0].run_id} and _leftovers(tmp_path) == []
    writes.clear()
    monkeypatch.setattr(suite, "write_json_atomic", lambda p, d: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    assert main(["run", "--suite", TINY, "--results", str(tmp_path / "cli"), "--no-report"]) == 1
    assert "error: cannot write the results file" in capsys.readouterr().err
    monkeypatch.setattr(suite, "write_json_atomic", real)
    again = run_suite(specs, tmp_path, progress=False)
    assert (again.skipped, again.ok) == (1, 2)


def test_atomic_writer_that_fails_mid_write_leaves_the_old_file(tmp_path, monkeypatch):
    from benchmarks.results import store

    path = tmp_path / "r.json"
    write_json_atomic(path, {"status": "ok"})
    monkeypatch.setattr(store.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(OSError):
        write_json_atomic(path, {"status": "failed", "big": "x" * 100_000})
    assert json.loads(path.read_text()) == {"status": "ok"} and list(tmp_path.iterdir()) == [path]


def test_truncated_token_cache_is_rebuilt(tmp_path, monkeypatch):
    from benchmarks.data.tokenize import tokenize

    monkeypatch.setenv("CLBENCH_CACHE", str(tmp_path))
    x = tokenize(["turn on the lights", "what time is it"], max_length=8)
    (entry,) = (tmp_path / "tokens").glob("*.pt")
    entry.write_bytes(entry.read_bytes()[:50])
    with pytest.warns(UserWarning, match=f"cache file {re.escape(str(entry))} .*unreadable.*rebuilding"):
        again = tokenize(["turn on the lights", "what time is it"], max_length=8)
    assert again.equal(x) and tokenize(["turn on the lights", "what time is it"], max_length=8).equal(x)


def test_truncated_mnist_and_clinc150_caches_are_rebuilt(tmp_path, monkeypatch):
    from benchmarks.data import clinc150, mnist

    monkeypatch.setenv("CLBENCH_CACHE", str(tmp_path))
    mnist.load_mnist.cache_clear()
    try:
        x, y = mnist.load_mnist(False)
        cached = tmp_path / "mnist" / "mnist_test.pt"
        cached.write_bytes(cached.read_bytes()[:1000])
        mnist.load_mnist.cache_clear()
        with pytest.warns(UserWarning, match="MNIST tensors.*unreadable"):
            x2, y2 = mnist.load_mnist(False)
        assert x2.equal(x) and y2.equal(y)
    finally:
        mnist.load_mnist.cache_clear()
    clinc150.load_clinc150.cache_clear()
    try:
        root = clinc150.fetch()
        (root / "data_full.json").write_text('{"train": [["hi", ')
        with pytest.warns(UserWarning, match="CLINC150 files .* unreadable"):
            splits, domains = clinc150.load_clinc150()
        assert len(splits.train_texts) == 15_000 and len(domains) == 10
    finally:
        clinc150.load_clinc150.cache_clear()


def test_signal_handlers_respect_an_ignored_sigint_and_are_restored():
    from benchmarks.engine.suite import Stop, stop_on_signals

    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # e.g. a background job of a shell script
    try:
        with stop_on_signals():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            with pytest.raises(Stop) as info:
                signal.raise_signal(signal.SIGTERM)
            assert info.value.signum == signal.SIGTERM
            signal.raise_signal(signal.SIGTERM)  # a second signal during clean-up: ignored
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, before)
