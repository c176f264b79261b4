"""Results files: one JSON per run, written atomically; loading without torch or avalanche.

Stable keys that scripts (and the report) rely on, schema version 1:

    schema_version  int, 1
    run_id          str, hash of the resolved run config (scenario, model, strategy, train, seed)
    suite           str, suite the run came from
    scenario        str, registered scenario name (e.g. "split_mnist_class_il")
    setting         str, "class_il" | "task_il" | "domain_il"
    strategy        str, registered strategy name (e.g. "replay")
    seed            int
    status          "ok" | "failed"
    error           null | {"type", "message", "traceback", "experience"}  (experience reached, 0-based)
    accuracy_matrix list of rows; row i = accuracies (fractions in [0,1]) on every experience of the
                    test stream after training experience i (fewer rows than T when a run failed)
    initial_accuracy list of T accuracies of the untrained model (for FWT) or null
    metrics         {"average_accuracy", "average_incremental_accuracy", "forgetting", "bwt", "fwt",
                     "avalanche_forgetting"} (null where undefined or when the run failed)
    train_time_s    list, wall seconds of training on each experience (cache fill excluded)
    eval_time_s     list, wall seconds of evaluation after each experience (cache fill excluded)
    cache_fill_s    float (optional, added in place: files without it read as 0), seconds this run spent
                    filling the process-wide frozen-feature caches (MiniLM's feature memo, prefix cache):
                    a one-off that the first run in a process pays; included in total_time_s only
    total_time_s    float
    cpu_time_s      float (optional, added in place): CPU seconds of the run's process during the run
                    (user + system, all its threads; cache fill included), for checking a suite's
                    time budget on a loaded machine, where wall times stretch
    peak_memory_mb  {"rss": float, "cuda": float | null}
    replay_memory   {"samples": int, "bytes": int}  what the strategy stores of past data (0 if none);
                    bytes as a buffer stores them (benchmarks/core/storage.py: uint8 images, uint16
                    token ids, float32 float data, hidden states in their stored dtype, + label
                    (+ task id in task-IL) per sample, + DER's float32 logits)
    extra_state     {"parameters": int, "bytes": int} (optional, added in place): tensors kept by
                    strategies that store no data (EWC/SI/MAS importances and anchors, L2's anchor,
                    LwF's previous model); 0 for the others
    added_parameters  [int] per experience (optional): parameters a strategy adds to the model for
                    each experience (modular_lora: a LoRA module + head; moe_adapters: its expert pool +
                    routers at the first experience, 0 after); absent for the others
    data_path       which loader fed training (see the table in benchmarks/fastpath/template.py) or null
    diagnostics     only for scenarios with ``diagnostics = true`` (Transformers; benchmarks/diagnostics):
                    {"blocks": n_layers B, "frozen_below": int | null,
                     "probe_accuracy": [i][b][j]  ridge-probe accuracy of block b's pooled output on
                                      experience j (fit on a train subsample, scored on a test subsample,
                                      over j's classes) after training experience i; null for j > i,
                     "attention_kl":  [i][b][j]  mean KL(A_after_j || A_after_i) of block b's attention
                                      maps on a fixed drift set; null for j > i,
                     "cka":           [i][b][j]  linear CKA of block b's representations after i and
                                      after j on the drift set (1 = unchanged); null for j > i,
                     "samples": {"fit": [per j], "test": [per j], "drift": int},
                     "setup_s": float, "time_s": [seconds per experience], "params": {...}}
    routing         only for mixtures of experts (moe_adapters; strategies/plugins/expert_routing.py):
                    {"blocks": [adapted block indices b], "experts": E, "top_k": k, "freeze_used": bool,
                     "owned":   [i][b]  the k experts picked most while training experience i,
                     "selection_accuracy": [i][j]  fraction of test experience j's samples sent to
                                j's router after training i (1 in task-IL); null for j > i,
                     "trainable_parameters": [i]  expert + router parameters trained in experience i,
                     "load":    [i][b][j]  E fractions: share of test experience j's top-k slots per
                                expert after training i (the routing distribution),
                     "changed": [i][b][j]  fraction of j's test samples whose top-k expert set differs
                                from the one after training j (router forgetting); null for j > i,
                     "routing_accuracy": [i][b][j]  mean share of j's top-k slots on owned[j][b];
                                null for j > i}
    config          full resolved config {"scenario": {...}, "model": {...}, "strategy": {...},
                    "train": {...}, "seed": int} (+ "holdout": {"experiences", "validation_fraction",
                    "seed"} for a tuning trial, benchmarks/tuning: scored on a validation split)
    hparams_provenance  (optional, added in place) where each hyper-parameter came from:
                    {"strategy": {key: {"source": "default" | "hand-set" | "tuned", "from": str[, "doc"]}},
                     "train": {same for TrainConfig keys},
                     "tuned": {"fragment", "protocol", "k", "validation_fraction", "trials", "metric",
                               "score", "date", "study"} (only when a tuned fragment set values)};
                    benchmarks/config/sources.py; ``hparams_label`` below summarises it
    seeds           {"global", "class_order", "model_init", "data_order"}
    provenance      {"git_commit", "git_dirty", "packages": {name: version}, "python", "platform",
                     "device", "device_name", "hostname", "started_at", "finished_at", "command"}
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
REQUIRED_KEYS = ("schema_version", "scenario", "strategy", "seed", "status", "accuracy_matrix", "metrics")


def run_filename(scenario: str, strategy: str, seed: int, run_id: str) -> str:
    """File name of a run's results; the run id makes names unique per resolved config."""
    safe = strategy.replace("+", "-plus-")
    return f"{scenario}__{safe}__seed{seed}__{run_id[:10]}.json"


def jsonable(value: Any) -> Any:
    """``value`` with non-finite floats (not valid JSON) replaced by their names ("nan", "inf")."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so that readers never see a half-written file (temp file + fsync + rename)."""
    path = Path(path)
    data = jsonable(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=False, allow_nan=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def load_result(path: Path) -> dict[str, Any]:
    """Load one results file and check its schema version and stable keys."""
    with open(path) as fh:
        data = json.load(fh)
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ValueError(f"{path}: not a clbench results file (missing keys {missing})")
    if data["schema_version"] != SCHEMA_VERSION:
        raise ValueError(
            f"{path}: schema_version {data['schema_version']} is not supported "
            f"(this clbench reads version {SCHEMA_VERSION})"
        )
    return data


#: the folder of run logs (TensorBoard, W&B) under a results folder; W&B writes JSON there too
LOG_FOLDER = "logs"


def iter_result_files(folder: Path) -> Iterator[Path]:
    """All results files below a folder (recursively), in a stable order; temp files, the report and
    the run logs skipped."""
    for p in sorted(Path(folder).rglob("*.json")):
        parents = p.relative_to(folder).parts[:-1]
        if p.name.startswith(".") or "report" in parents or (parents and parents[0] == LOG_FOLDER):
            continue
        yield p


def load_results(folder: Path) -> list[dict[str, Any]]:
    """Load every results file below a folder; files that are not results raise a clear error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"results folder {folder} does not exist (run `make bench` first)")
    return [load_result(p) for p in iter_result_files(folder)]


def hparams_label(sources: dict | None) -> str | None:
    """One word for a run's ``hparams_provenance``: "tuned (k=2, 12 trials)", "hand-set" or "default".

    "tuned" when a tuned fragment set any key; "hand-set" when a suite table or ``--set`` set any (the
    suite's shared [train] counts); "default" when every key is a documented default; None when the run
    records no provenance (results written before it existed).
    """
    if not sources:
        return None
    kinds = {v.get("source") for part in ("strategy", "train") for v in (sources.get(part) or {}).values()}
    tuned = sources.get("tuned")
    if "tuned" in kinds and tuned:
        return f"tuned (k={tuned.get('k')}, {tuned.get('trials')} trials)"
    return "hand-set" if "hand-set" in kinds else "default"


class ResultsFolderError(ValueError):
    """``--results`` cannot hold a suite's results; the message names the path and the fix."""


#: what a results folder may hold besides suite folders: the report, and hidden files (claims, temp files).
_REPORT_DIR = "report"
#: other folders a results folder may hold at its top: run logs (LOG_FOLDER) and tuning studies (tune/<suite>.db)
_SIDE_DIRS = (_REPORT_DIR, LOG_FOLDER, "tune")


def check_results_folder(folder: Path, suite: str) -> None:
    """Refuse, before any run, a results folder that cannot hold ``suite``'s results (nothing is created).

    A results folder holds one folder per suite (``<folder>/<suite>/*.json``, one results file per run),
    a ``report/`` folder and hidden entries (claims, temp files), and may nest other results folders;
    nothing else. Refused: a path that is
    a file, a place this process cannot write to, results files directly in ``folder`` (a suite folder
    passed as the results folder), another suite's results in ``<folder>/<suite>/``, and any other file
    or folder (a foreign layout: e.g. ``--results .`` or ``--results ~``). Unreadable (e.g. truncated)
    results files of this suite are accepted: their runs are run again.

    Raises:
        ResultsFolderError: naming the path and the fix.
    """
    folder = Path(folder)
    for path in (folder, folder / suite):
        if path.exists() and not path.is_dir():
            raise ResultsFolderError(
                f"--results {folder}: {path} is a file, not a folder; pass a folder (e.g. --results results), "
                "or move the file away")
    if folder.is_dir():
        _check_layout(folder, suite)
    _check_writable(folder / suite)


def _check_layout(folder: Path, suite: str) -> None:
    foreign = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or (entry.name in _SIDE_DIRS and entry.is_dir()):
            continue
        if entry.is_file() and entry.suffix == ".json" and _suite_of(entry) is not None:
            raise ResultsFolderError(
                f"--results {folder} holds results files directly (e.g. {entry.name}, suite {_suite_of(entry)!r}): "
                f"it is a suite's folder, not a results folder; pass its parent (--results {folder.parent}) "
                "or a new folder")
        if not _only_results(entry):
            foreign.append(entry.name + ("/" if entry.is_dir() else ""))
    if foreign:
        raise ResultsFolderError(
            f"--results {folder} holds files that are not clbench results ({', '.join(foreign[:5])}"
            f"{' ...' if len(foreign) > 5 else ''}); a results folder holds only <suite>/*.json and report/: "
            "pass a new or empty folder (e.g. --results results), or an existing results folder")
    own = folder / suite
    if own.is_dir():
        for path in sorted(own.glob("*.json")):
            if path.name.startswith("."):
                continue
            other = _suite_of(path)
            if other is not None and other != suite:
                raise ResultsFolderError(
                    f"--results {folder}: {own} holds results of suite {other!r} (e.g. {path.name}), not of "
                    f"{suite!r}; pass another --results folder, or move those files to {folder / other}")
            if other is None and _parses(path):
                raise ResultsFolderError(
                    f"--results {folder}: {path} is JSON but not a clbench results file; "
                    "move it away or pass another --results folder")


def _only_results(path: Path, depth: int = 3) -> bool:
    """True for a folder holding only .json files, report/ folders and hidden entries, ``depth`` levels deep
    (a suite folder, or a results folder nested in this one, e.g. results/own_csv/own_csv/)."""
    if not path.is_dir():
        return path.suffix == ".json"
    if depth == 0:
        return False
    return all(p.name.startswith(".") or (p.name == _REPORT_DIR and p.is_dir()) or _only_results(p, depth - 1)
               for p in path.iterdir())


def _suite_of(path: Path) -> str | None:
    """The suite of a clbench results file; None when it is not one (or is unreadable)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "schema_version" not in data or "run_id" not in data:
        return None
    return str(data.get("suite"))


def _parses(path: Path) -> bool:
    try:
        json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return True


def _check_writable(folder: Path) -> None:
    """Write (then remove) a probe file in ``folder`` or its nearest existing parent; nothing is left behind."""
    probe_in = folder
    while not probe_in.exists() and probe_in != probe_in.parent:
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        raise ResultsFolderError(f"--results {folder.parent}: {probe_in} is a file, not a folder; pass a folder "
                                 "(e.g. --results results)")
    try:
        fd, probe = tempfile.mkstemp(prefix=".clbench-probe.", dir=probe_in)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ResultsFolderError(
            f"--results {folder.parent}: cannot write to {probe_in} ({exc.strerror or exc}); pass a folder you "
            "can write to (e.g. --results results), or fix its permissions") from None
