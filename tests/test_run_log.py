"""Run logging (benchmarks/engine/run_log.py): TensorBoard and W&B offline logs read back; off = nothing."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import tomllib
from helpers import tiny_doc, tiny_specs

from benchmarks.config.loader import expand
from benchmarks.core.typed import ConfigError
from benchmarks.engine.suite import run_suite
from benchmarks.results.store import load_results

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, log: tuple[str, ...]) -> list[dict]:
    specs = [replace(s, log=log) for s in tiny_specs(["naive", "ewc"])]
    summary = run_suite(specs, tmp_path, progress=False)
    assert summary.ok == 2, [r.get("error") for r in load_results(tmp_path)]
    return sorted(load_results(tmp_path), key=lambda r: r["strategy"])


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A tiny two-run suite with both loggers on (W&B offline), and the same suite with logging off."""
    mp = pytest.MonkeyPatch()
    mp.setenv("WANDB_MODE", "offline")
    on, off = tmp_path_factory.mktemp("on"), tmp_path_factory.mktemp("off")
    try:
        yield on, _run(on, ("tensorboard", "wandb")), off, _run(off, ())
    finally:
        mp.undo()


def test_tensorboard_events_hold_the_accuracy_matrix_loss_metrics_and_hparams(logged):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    folder, results, _, _ = logged
    for result in results:
        run_dir = folder / "logs" / "tensorboard" / "tiny" / Path(_result_file(folder, result)).stem
        acc = EventAccumulator(str(run_dir))
        acc.Reload()
        R = result["accuracy_matrix"]
        for j in range(len(R)):  # column j of R, x = experience trained
            events = acc.Scalars(f"R/exp{j}")
            assert [e.step for e in events] == list(range(len(R)))
            assert [e.value for e in events] == pytest.approx([R[i][j] for i in range(len(R))])
        losses = acc.Scalars("Loss_MB/train_phase/train_stream/Task000")
        assert len(losses) >= 2 and all(e.value > 0 for e in losses)  # one per training iteration
        assert [e.step for e in losses] == sorted(e.step for e in losses)
        final = acc.Scalars("final/average_accuracy")[-1].value
        assert final == pytest.approx(result["metrics"]["average_accuracy"])
        start = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        hp = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info.hparams
        assert hp["strategy.name"].string_value == result["strategy"]
        assert hp["train.batch_size"].number_value == 16


def test_wandb_offline_runs_hold_the_same_values(logged):
    folder, results, _, _ = logged
    runs = sorted((folder / "logs" / "wandb" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == len(results)
    by_name = {}
    for path in runs:
        records = _wandb_records(path)
        by_name[records["run"][0].run.display_name] = records
    for result in results:
        records = by_name[f"{result['scenario']}/{result['strategy']}/seed{result['seed']}"]
        assert records["run"][0].run.run_group == "tiny"
        config = {_key(i): json.loads(i.value_json) for i in records["run"][0].run.config.update}
        assert config["strategy.name"] == result["strategy"] and config["seed"] == result["seed"]
        rows = [_items(h.history) for h in records["history"]]
        T = len(result["accuracy_matrix"])
        logged_R = [[row[f"R/exp{j}"] for j in range(T)] for row in rows if "R/exp0" in row]
        assert [row["experience"] for row in rows if "R/exp0" in row] == list(range(T))
        assert len(logged_R) == T
        for got, want in zip(logged_R, result["accuracy_matrix"]):
            assert got == pytest.approx(want)
        assert sum("Loss_MB/train_phase/train_stream/Task000" in row for row in rows) >= 2
        summary = {}
        for record in records["summary"]:
            summary.update(_items(record.summary))
        assert summary["final/average_accuracy"] == pytest.approx(result["metrics"]["average_accuracy"])


def test_logging_off_changes_no_result_and_writes_no_log_folder(logged):
    on_folder, on, off_folder, off = logged
    assert not (off_folder / "logs").exists()
    assert (on_folder / "logs").is_dir()
    for a, b in zip(on, off):
        assert a["accuracy_matrix"] == b["accuracy_matrix"]  # bit for bit: logging reads, never draws or trains
        assert a["run_id"] == b["run_id"] and a["config"] == b["config"]
    assert len(load_results(on_folder)) == 2  # the reader skips W&B's JSON files under logs/


def test_evaluator_without_logging_has_no_logger_and_no_extra_metric():
    from benchmarks.engine.evaluation import make_evaluator

    evaluator = make_evaluator()
    assert evaluator.loggers == [] and len(evaluator.metrics) == 1


def test_unknown_logger_is_a_config_error_and_cli_parses_the_switch():
    from benchmarks.cli import _log_list

    doc = tiny_doc(["naive"])
    doc["suite"]["log"] = ["tensorbaord"]
    with pytest.raises(ConfigError, match="unknown logger.*tensorbaord"):
        expand(doc, name="tiny", where="test")
    doc["suite"]["log"] = ["tensorboard"]
    assert {s.log for s in expand(doc, name="tiny", where="test")} == {("tensorboard",)}
    assert _log_list("tensorboard, wandb") == ["tensorboard", "wandb"] and _log_list("none") == []


def test_clbench_console_script_help_lists_every_subcommand():
    script = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["clbench"]
    module, func = script.split(":")
    code = f"import sys; from {module} import {func}; sys.exit({func}(['--help']))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: clbench")
    for sub in ("run", "check", "list", "report"):
        assert sub in out.stdout


def _result_file(folder: Path, result: dict) -> str:
    return next(p.name for p in (folder / "tiny").glob("*.json") if json.loads(p.read_text())["run_id"] == result["run_id"])


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def _items(message) -> dict:
    """History or summary record -> {key: value}."""
    return {_key(i): json.loads(i.value_json) for i in message.item} if hasattr(message, "item") else \
        {_key(i): json.loads(i.value_json) for i in message.update}


def _wandb_records(path: Path) -> dict[str, list]:
    """The records of a W&B offline run file by type (its LevelDB-style log: 32 KiB blocks of
    chunks with a 7-byte header: crc32, length, type 1 full / 2 first / 3 middle / 4 last)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, block, chunk, out = path.read_bytes(), 7, 32768, b"", {}
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = chunk + data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            record = pb.Record.FromString(chunk)
            out.setdefault(record.WhichOneof("record_type"), []).append(record)
            chunk = b""
    return out


def test_cli_switch_logs_a_suite(tmp_path):
    from benchmarks.cli import main

    suite = tmp_path / "tiny_cli.toml"
    suite.write_text('[suite]\nseeds = [0]\nstrategies = ["naive"]\ndevice = "cpu"\n'
                     '[train]\nepochs = 1\nbatch_size = 16\neval_batch_size = 64\n[scenarios.synthetic_class_il]\n')
    results = tmp_path / "results"
    assert main(["run", "--suite", str(suite), "--results", str(results), "--log", "tensorboard", "--no-report"]) == 0
    runs = list((results / "logs" / "tensorboard" / "tiny_cli").iterdir())
    assert len(runs) == 1 and list(runs[0].glob("events.out.tfevents.*"))
    assert not (results / "logs" / "wandb").exists()  # only the logger asked for


def test_a_logger_failing_at_the_end_keeps_the_result(tmp_path, monkeypatch):
    from benchmarks.engine import run_log
    from benchmarks.engine.runner import run_one

    def broken(self, result):
        raise OSError("disk full")

    monkeypatch.setattr(run_log.RunLog, "finish", broken)
    spec = replace(tiny_specs(["naive"])[0], log=("tensorboard",), log_dir=str(tmp_path))
    with pytest.warns(UserWarning, match="run logging of synthetic_class_il/naive/seed0 failed: OSError"):
        result = run_one(spec)
    assert result["status"] == "ok" and len(result["accuracy_matrix"]) == 2
