"""The lines `make bench` prints last (reports/headline.py, benchmarks/cli._report), on hand-made results."""

from __future__ import annotations

from pathlib import Path

from test_report import make_run, write

from benchmarks.cli import _report

# per strategy, one accuracy matrix per seed; ACC and Chaudhry forgetting by hand in the comments
MNIST = {
    "naive": [[[1.0, 0.0], [0.2, 0.9]], [[1.0, 0.0], [0.0, 1.0]]],  # ACC 0.55, 0.50; forgetting 0.8, 1.0
    "replay": [[[0.9, 0.1], [0.6, 0.8]], [[1.0, 0.0], [0.8, 0.8]]],  # ACC 0.70, 0.80; forgetting 0.3, 0.2
    "joint": [[[1.0, 0.0], [0.95, 0.95]], [[1.0, 0.0], [0.97, 0.97]]],  # ACC 0.95, 0.97: bound, not "best"
}
TEXT = {"ewc": [[[0.8, 0.1, 0.0], [0.5, 0.9, 0.1], [0.4, 0.6, 0.9]]]}  # ACC 0.6333, forgetting (0.4+0.3)/2


def _folder(tmp_path: Path) -> Path:
    for scenario, setting, plan in (("split_mnist_class_il", "class_il", MNIST), ("clinc150_task_il", "task_il", TEXT)):
        for strategy, matrices in plan.items():
            for seed, R in enumerate(matrices):
                write(tmp_path / "test", make_run(scenario, setting, strategy, seed, R))
    return tmp_path


def test_bench_prints_report_path_and_best_strategy_per_scenario(tmp_path, capsys):
    _report(_folder(tmp_path))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"report: {tmp_path / 'report' / 'index.html'} (Markdown: {tmp_path / 'report' / 'index.md'})"
    assert (tmp_path / "report" / "index.html").is_file()
    lines = [line.strip() for line in out[2:]]
    assert len(lines) == 2  # one per scenario
    mnist = next(line for line in lines if line.startswith("Split-MNIST"))
    assert "Replay, ACC 75.0 ± 7.1%, forgetting 25.0 ± 7.1 pp (mean over 2 seeds; joint 96.0)" in mnist
    text = next(line for line in lines if "EWC" in line)
    assert "ACC 63.3%, forgetting 35.0 pp (mean over 1 seed)" in text


def test_a_scenario_with_only_bounds_prints_no_best(tmp_path, capsys):
    from reports.headline import headline_lines

    for seed, R in enumerate(MNIST["joint"]):
        write(tmp_path, make_run("split_mnist_class_il", "class_il", "joint", seed, R))
    assert headline_lines(tmp_path) == []
