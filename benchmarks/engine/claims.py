"""Run claims: a run in progress is marked in the results folder, so two invocations never run it twice.

A claim is the file ``<results>/<suite>/.claims/<run file stem>.claim`` holding JSON {host, pid, started_at,
token, run}. It is created with ``O_CREAT | O_EXCL`` (atomic: of two processes creating it, one fails),
just before the run starts, and removed by its owner once the run's result is written, or when the run
fails, or the suite is interrupted. While the owner holds it, a heartbeat thread touches it (mtime)
every ``heartbeat_s`` seconds.

A claim is stale, and is taken over, when
- its host is this host and its pid is not a live process (the owner died: SIGKILL, a crash, a reboot), or
- its heartbeat (mtime) is older than ``stale_after_s`` (the owner stopped, or its host died; the only
  test possible for a process on another host). Ages are measured against the file system's own
  clock (the mtime of a file just written), so hosts with skewed clocks agree.
Taking over is serialised by a second lock file (``<claim>.break``, also O_EXCL), inside which the
claim is re-read: a claim renewed or replaced meanwhile is left alone.

Limits (docs/faults.md): hosts must have distinct host names; O_EXCL is atomic on local file systems and
on NFS v3 and later (not NFS v2); a process stopped for longer than ``stale_after_s`` (Ctrl-Z) loses its
claims and may finish a run that another process then also runs (the result files stay whole either way:
they are written atomically).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from benchmarks.config.spec import RunSpec
from benchmarks.results.store import run_filename

CLAIMS_DIR = ".claims"
#: seconds between two touches of a held claim.
HEARTBEAT_S = 30.0
#: a claim whose heartbeat is older than this is stale (20 missed heartbeats).
STALE_AFTER_S = 600.0
#: a ``.break`` lock older than this was left by a process that died while taking over a claim.
_BREAK_STALE_S = 60.0


@dataclass(frozen=True)
class Claim:
    """A claim as read from its file (``age_s``: seconds since its last heartbeat)."""

    host: str
    pid: int
    started_at: float
    token: str
    age_s: float

    def holder(self) -> str:
        """Who holds the run, for messages: "host pid 123 since 14:02:11"."""
        return f"{self.host} pid {self.pid} since {time.strftime('%H:%M:%S', time.localtime(self.started_at))}"


def _pid_alive(pid: int) -> bool:
    """True when ``pid`` is a live (not zombie) process on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(0) said it exists
    return state not in ("Z", "X")


class Claims:
    """The claims this process holds in one results folder.

    Args:
        results_dir: the results folder (claims live in ``<results>/<suite>/.claims/``).
        heartbeat_s: seconds between touches of held claims.
        stale_after_s: age after which another host's claim (or a claim of a live pid that stopped
            beating) is taken over.
    """

    def __init__(self, results_dir: Path, *, heartbeat_s: float = HEARTBEAT_S,
                 stale_after_s: float = STALE_AFTER_S) -> None:
        self.results_dir = Path(results_dir)
        self.heartbeat_s, self.stale_after_s = heartbeat_s, stale_after_s
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.held: dict[Path, str] = {}  # claim file -> our token
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def path(self, spec: RunSpec) -> Path:
        """The claim file of a run."""
        name = run_filename(spec.scenario, spec.strategy, spec.seed, spec.run_id)
        return self.results_dir / spec.suite / CLAIMS_DIR / (name[: -len(".json")] + ".claim")

    def acquire(self, spec: RunSpec) -> Claim | None:
        """Claim a run: None when this process now holds it, else the live claim of its holder."""
        path = self.path(spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):  # a claim released or broken between our tries: try again
            token = secrets.token_hex(8)
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                other = self.read(path)
                if other is None:
                    continue  # released meanwhile
                if not self.is_stale(other):
                    return other
                self._break(path, other)
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump({"host": self.host, "pid": self.pid, "started_at": time.time(), "token": token,
                           "run": spec.run_id}, fh)
            with self._lock:
                self.held[path] = token
            return None
        other = self.read(path)
        return other if other is not None else Claim("?", 0, time.time(), "", 0.0)

    def release(self, spec: RunSpec) -> None:
        """Give a run's claim back (only if it is still ours)."""
        self._release(self.path(spec))

    def release_all(self) -> None:
        """Give back every claim this process holds."""
        for path in list(self.held):
            self._release(path)

    def _release(self, path: Path) -> None:
        with self._lock:
            token = self.held.pop(path, None)
        if token is None:
            return
        claim = self.read(path)
        if claim is not None and claim.token == token:  # taken over meanwhile (we were stale): not ours
            path.unlink(missing_ok=True)

    def read(self, path: Path) -> Claim | None:
        """The claim in ``path``; None when there is none. A claim being written reads as age 0, pid 0."""
        try:
            stat = path.stat()
            text = path.read_text()
        except FileNotFoundError:
            return None
        age = max(0.0, self._fs_now(path.parent) - stat.st_mtime)
        try:
            data = json.loads(text)
            return Claim(str(data["host"]), int(data["pid"]), float(data["started_at"]), str(data["token"]), age)
        except (ValueError, KeyError, TypeError):  # created, not yet written (or garbage): judged by age
            return Claim("?", 0, stat.st_mtime, "", age)

    def is_stale(self, claim: Claim) -> bool:
        """True when the claim's owner is dead (this host) or its heartbeat stopped (any host)."""
        if claim.age_s > self.stale_after_s or (not claim.token and claim.age_s > _BREAK_STALE_S):
            return True  # heartbeat stopped, or a claim never written (its maker died right after creating it)
        return claim.host == self.host and claim.pid > 0 and not _pid_alive(claim.pid)

    def _break(self, path: Path, seen: Claim) -> None:
        """Remove the stale claim ``seen`` at ``path``, unless it was renewed or replaced meanwhile."""
        lock = path.with_name(path.name + ".break")
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                if self._fs_now(lock.parent) - lock.stat().st_mtime > _BREAK_STALE_S:
                    lock.unlink(missing_ok=True)  # its maker died while taking over
            except FileNotFoundError:
                pass
            time.sleep(0.05)
            return
        os.close(fd)
        try:
            now = self.read(path)
            if now is not None and now.token == seen.token and self.is_stale(now):
                path.unlink(missing_ok=True)
        finally:
            lock.unlink(missing_ok=True)

    @staticmethod
    def _fs_now(folder: Path) -> float:
        """The file system's clock: the mtime of a file written now (hosts' clocks may disagree)."""
        try:
            fd, tmp = tempfile.mkstemp(prefix=".now.", dir=folder)
        except OSError:
            return time.time()
        try:
            return os.fstat(fd).st_mtime
        finally:
            os.close(fd)
            os.unlink(tmp)

    # -- heartbeat ----------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="clbench-claims", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.release_all()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            with self._lock:
                paths = list(self.held)
            for path in paths:
                try:
                    os.utime(path)
                except OSError:
                    pass  # released meanwhile, or the folder is gone: nothing to renew
