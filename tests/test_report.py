"""Tests of the report generator (reports/): synthetic results files in, report files out. No torch."""

from __future__ import annotations

import csv
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.results.metrics import all_metrics, average_accuracy, backward_transfer, forgetting
from benchmarks.results.store import run_filename, write_json_atomic
from reports import ReportError, build_report
from reports.__main__ import main
from reports.labels import scenario_display, strategy_style
from reports.published import load_published
from reports.runs import parse_run
from reports.stats import summarize, t_quantile

T = 4
# strategy -> (seeds, retention); replay retains most, so it has the best ACC by construction.
PLAN = {"naive": ((0, 1, 2), 0.3), "replay": ((0, 1, 2), 0.9), "ewc": ((0, 1), 0.5)}
FAILED_MESSAGE = "CUDA out of memory | tried to allocate <2 GiB>"
HAND_R = [[0.9, 0.1], [0.6, 0.8]]  # ACC 0.7, forgetting 0.3, BWT -0.3 (by hand)


def make_matrix(seed: int, retention: float, T: int = T) -> list[list[float]]:
    """A plausible class-IL accuracy matrix: learnt ~0.97, decays by ``retention``, 0.1 if unseen."""
    rng = np.random.default_rng(seed)
    R = np.full((T, T), 0.1)
    for i in range(T):
        for j in range(i + 1):
            R[i, j] = 0.1 + 0.87 * retention ** (i - j)
    return np.clip(R + rng.uniform(-0.02, 0.02, R.shape), 0, 1).round(4).tolist()


def make_run(scenario: str, setting: str, strategy: str, seed: int, R: list, **extra) -> dict:
    """A results dict following benchmarks/results/store.py (schema version 1)."""
    ok = extra.get("status", "ok") == "ok"
    data = {
        "schema_version": 1,
        "run_id": f"{strategy}{seed:04d}deadbeef",
        "suite": "test",
        "scenario": scenario,
        "setting": setting,
        "strategy": strategy,
        "seed": seed,
        "status": "ok",
        "error": None,
        "accuracy_matrix": R,
        "initial_accuracy": None,
        "metrics": all_metrics(R) if ok else {},
        "train_time_s": [1.0 + seed] * len(R),
        "eval_time_s": [0.1] * len(R),
        "total_time_s": 10.0 + seed,
        "peak_memory_mb": {"rss": 100.0, "cuda": None},
        "replay_memory": {
            "samples": 1100 if strategy == "replay" else 0,
            "bytes": 3449600 if strategy == "replay" else 0,
        },
        "config": {},
        "seeds": {"global": seed},
        "provenance": {
            "git_commit": "abc1234",
            "git_dirty": False,
            "device": "cpu",
            "packages": {"torch": "2.14.1", "numpy": "2.4.6"},
            "python": "3.11",
            "started_at": "2025-01-01T10:00:00+00:00",
            "finished_at": "2025-01-01T11:00:00+00:00",
        },
    }
    data.update(extra)
    return data


def write(folder: Path, data: dict) -> None:
    """Write one results file the way the runner does."""
    name = run_filename(data["scenario"], data["strategy"], data["seed"], data["run_id"])
    write_json_atomic(folder / name, data)


def failed_run(seed: int = 2, rows: int = 2, **extra) -> dict:
    """An ewc run that failed at experience ``rows`` with a partial matrix (rows < T)."""
    R = make_matrix(100 + seed, 0.5)[:rows]
    error = {"type": "RuntimeError", "message": FAILED_MESSAGE, "traceback": "...", "experience": rows}
    return make_run(
        "split_mnist_class_il",
        "class_il",
        "ewc",
        seed,
        R,
        status="failed",
        error=error,
        metrics={k: None for k in all_metrics(HAND_R)},
        **extra,
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """Class-IL: 3 strategies x 3 seeds (ewc: 2 ok + 1 failed), declaring hsu2018; task-IL: one run."""
    folder = tmp_path_factory.mktemp("results")
    for strategy, (seeds, retention) in PLAN.items():
        for seed in seeds:
            R = make_matrix(100 * len(strategy) + seed, retention)
            write(folder, make_run("split_mnist_class_il", "class_il", strategy, seed, R, reference="hsu2018"))
    write(folder, failed_run(reference="hsu2018"))
    write(folder, make_run("split_mnist_task_il", "task_il", "naive", 0, HAND_R))
    return folder


@pytest.fixture(scope="module")
def report(results, tmp_path_factory) -> Path:
    """The report folder built from ``results``."""
    out = tmp_path_factory.mktemp("report")
    index = build_report(results, out)
    assert index == out / "index.html"
    return out


@pytest.fixture(scope="module")
def summary(report) -> dict[tuple[str, str], dict[str, str]]:
    """summary.csv rows keyed by (scenario, strategy)."""
    with open(report / "summary.csv", newline="") as fh:
        return {(r["scenario"], r["strategy"]): r for r in csv.DictReader(fh)}


def input_matrices(strategy: str) -> list[list[list[float]]]:
    """The matrices the fixture wrote for a class-IL strategy (successful seeds only)."""
    seeds, retention = PLAN[strategy]
    return [make_matrix(100 * len(strategy) + s, retention) for s in seeds]


def test_every_output_file_exists(report):
    for name in ("index.md", "index.html", "summary.csv", "tables.tex"):
        assert (report / name).stat().st_size > 0, name
    for scenario in ("split_mnist_class_il", "split_mnist_task_il"):
        for kind in ("curve", "final", "matrices", "cost"):
            png = report / "figures" / f"{scenario}_{kind}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
            assert b"<svg" in (report / "figures" / f"{scenario}_{kind}.svg").read_bytes()[:2000]


@pytest.mark.parametrize("strategy", sorted(PLAN))
@pytest.mark.parametrize(
    "metric, fn", [("average_accuracy", average_accuracy), ("forgetting", forgetting), ("bwt", backward_transfer)]
)
def test_summary_csv_equals_metrics_of_input_matrices(summary, strategy, metric, fn):
    values = [fn(R) for R in input_matrices(strategy)]
    row = summary[("split_mnist_class_il", strategy)]
    assert float(row[f"{metric}_frac_mean"]) == pytest.approx(np.mean(values), abs=1e-12)
    assert float(row[f"{metric}_frac_std"]) == pytest.approx(np.std(values, ddof=1), abs=1e-12)
    t = {2: 12.706204736, 3: 4.302652730}[len(values)]  # Student t 0.975 quantiles, df = n - 1
    expected_ci = t * np.std(values, ddof=1) / math.sqrt(len(values))
    assert float(row[f"{metric}_frac_ci95"]) == pytest.approx(expected_ci, rel=1e-8)
    assert int(row["n_seeds"]) == len(values)


def test_summary_csv_hand_computed_single_seed(summary):
    row = summary[("split_mnist_task_il", "naive")]
    assert float(row["average_accuracy_frac_mean"]) == pytest.approx(0.7)
    assert float(row["forgetting_frac_mean"]) == pytest.approx(0.3)
    assert float(row["bwt_frac_mean"]) == pytest.approx(-0.3)
    assert row["average_accuracy_frac_std"] == "" and row["average_accuracy_frac_ci95"] == ""  # n = 1
    assert float(row["train_time_s_mean"]) == pytest.approx(2.0)  # sum of train_time_s [1.0, 1.0]


def test_costs_in_summary(summary):
    assert float(summary[("split_mnist_class_il", "replay")]["replay_memory_bytes_mean"]) == 3449600
    assert float(summary[("split_mnist_class_il", "naive")]["train_time_s_mean"]) == pytest.approx(
        np.mean([4.0, 8.0, 12.0])
    )  # T x (1 + seed) for seeds 0, 1, 2


def test_failed_run_listed_with_error_and_excluded(report, summary):
    md = (report / "index.md").read_text()
    failed = md.split("## Failed runs", 1)[1].split("## Provenance", 1)[0]
    row = next(line for line in failed.splitlines() if "RuntimeError" in line)
    assert r"CUDA out of memory \| tried to allocate \<2 GiB\>" in row  # escaped: one table cell
    header = next(line for line in failed.splitlines() if line.startswith("| Scenario |"))
    cells = re.compile(r"(?<!\\)\|")  # unescaped pipes delimit cells
    assert len(cells.findall(row)) == len(cells.findall(header))
    assert "| 2 |" in row  # seed 2, failed at experience 2
    html = (report / "index.html").read_text()
    assert "CUDA out of memory | tried to allocate &lt;2 GiB&gt;" in html
    ewc = summary[("split_mnist_class_il", "ewc")]
    assert (ewc["n_seeds"], ewc["n_failed"]) == ("2", "1")
    assert "Runs: 10 (1 failed, 9 ok)" in md


def test_fewer_seeds_flagged(report, summary):
    assert {k[1]: r["fewer_seeds"] for k, r in summary.items() if k[0] == "split_mnist_class_il"} == {
        "naive": "0",
        "replay": "0",
        "ewc": "1",
    }
    md = (report / "index.md").read_text()
    assert "| EWC | 2 of 3 † |" in md
    assert "EWC: only 2 of 3 seeds succeeded" in md
    assert r"EWC$^\dagger$ & 2 &" in (report / "tables.tex").read_text()


def test_latex_bolds_best_acc_only(report):
    tex = (report / "tables.tex").read_text()
    table = tex.split(r"\label{tab:clbench-split-mnist-class-il}", 1)[1].split(r"\end{table}", 1)[0]
    rows = {line.split(" & ")[0]: line.split(" & ") for line in table.splitlines() if " & " in line}
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    acc = np.mean([average_accuracy(R) for R in input_matrices("replay")])
    assert rows["Replay"][2].startswith(r"$\mathbf{" + f"{100 * acc:.2f}")
    assert not rows["Naive (fine-tuning)"][2].startswith(r"$\mathbf")
    assert not rows[r"EWC$^\dagger$"][2].startswith(r"$\mathbf")
    assert rows["Naive (fine-tuning)"][6].startswith(r"$\mathbf")  # lowest memory (0 MB) wins


def test_hsu_comparison_when_reference_declared(report, summary):
    md = (report / "index.md").read_text()
    assert md.count("### Comparison with Hsu et al. 2018") == 1  # class-IL declares it, task-IL not
    ours = summary[("split_mnist_class_il", "naive")]
    mean, std = 100 * float(ours["average_accuracy_frac_mean"]), 100 * float(ours["average_accuracy_frac_std"])
    line = next(line for line in md.splitlines() if line.startswith("| Adam (naive) |"))
    assert f"| {mean:.2f} ± {std:.2f} (n = 3) | 19.71 ± 0.08 (n = 10) | {mean - 19.71:+.2f} |" in line
    assert ("**no (bound 2.00)**" in line) == (abs(mean - 19.71) > 2.0)
    comparison = md.split("### Comparison with", 1)[1].split("\n## ", 1)[0]  # up to the next section
    assert "| Replay |" not in comparison  # plain replay maps to no row
    assert "Offline (joint)" not in md.split("Published rows with no run")[0]  # no joint run here
    assert "Comparison with" not in md.split("## Split-MNIST, class-incremental", 1)[0]


def test_html_is_self_contained(report):
    html = (report / "index.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.IGNORECASE)
    assert "<link" not in html and "<script" not in html
    images = re.findall(r'<img src="([^"]*)"', html)
    assert len(images) == 8 and all(i.startswith("data:image/png;base64,") for i in images)


def test_definitions_and_provenance(report):
    md = (report / "index.md").read_text()
    assert "Chaudhry et al., ECCV 2018" in md and "Avalanche forgetting (= -BWT)" in md
    assert "`abc1234`" in md and "`2.14.1`" in md
    assert "2025-01-01T10:00:00+00:00 to 2025-01-01T11:00:00+00:00" in md
    # total_time_s = 10 + seed: 33 (naive) + 33 (replay) + 21 (ewc) + 12 (failed) + 10 (task-IL) = 109
    assert "failed included): 1 min 49 s" in md


def test_empty_folder_gives_clear_error(tmp_path, capsys):
    with pytest.raises(ReportError, match="no results files"):
        build_report(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert main([str(tmp_path)]) == 2
    assert "no results files" in capsys.readouterr().err
    with pytest.raises(ReportError, match="does not exist"):
        build_report(tmp_path / "missing")


def test_only_failed_runs_still_report(tmp_path, capsys):
    write(tmp_path, failed_run(seed=0, rows=1))
    assert main([str(tmp_path)]) == 0  # default out dir: RESULTS_DIR/report
    assert str(tmp_path / "report") in capsys.readouterr().out
    md = (tmp_path / "report" / "index.md").read_text()
    assert "No successful run" in md and "RuntimeError" in md
    assert build_report(tmp_path) == tmp_path / "report" / "index.html"  # report/ is not re-read


def test_stored_metrics_are_checked_not_trusted(tmp_path):
    data = make_run("split_mnist_task_il", "task_il", "naive", 0, HAND_R)
    data["metrics"]["average_accuracy"] = 0.99  # wrong on purpose
    run = parse_run(data, tmp_path / "x.json")
    assert run.metrics["average_accuracy"] == pytest.approx(0.7)
    assert run.mismatches and "average_accuracy" in run.mismatches[0]
    write(tmp_path, data)
    build_report(tmp_path, tmp_path / "out")
    md = (tmp_path / "out" / "index.md").read_text()
    assert "stored metrics disagree" in md and "| **70.00** |" not in md and "| 70.00 |" in md


def test_ok_run_with_non_square_matrix_is_listed_as_invalid(tmp_path):
    data = make_run("s", "class_il", "naive", 0, HAND_R)
    data["accuracy_matrix"] = [[0.9, 0.1]]  # "ok" but truncated: cannot be trusted
    run = parse_run(data, tmp_path / "x.json")
    assert run.status == "invalid" and "square" in run.error["message"]


@pytest.mark.parametrize("df, q", [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045)])
def test_t_quantile_matches_table(df, q):
    assert round(t_quantile(0.975, df), 3) == q


def test_summarize():
    s = summarize([0.5, None, float("nan"), 0.7])
    assert (s.n, s.mean) == (2, pytest.approx(0.6))
    assert s.std == pytest.approx(math.sqrt(0.02)) and s.ci95 == pytest.approx(12.7062047 * 0.1)
    one = summarize([0.4])
    assert one.n == 1 and math.isnan(one.std) and math.isnan(one.ci95)


def test_names_and_styles():
    assert scenario_display("split_mnist_class_il", "class_il") == "Split-MNIST, class-incremental"
    assert scenario_display("split_mnist_domain_il", "domain_il") == "Split-MNIST, domain-incremental"
    assert scenario_display("split_mnist_class_il_vit", "class_il") == "Split-MNIST (ViT), class-incremental"
    assert scenario_display("clinc150_class_il", "class_il") == "CLINC150, class-incremental"
    assert scenario_display("own_data", "task_il") == "own data, task-incremental"
    known = ["naive", "joint", "replay", "ewc", "si", "mas", "lwf", "gem", "l2", "online_ewc"]
    assert len({strategy_style(s).color for s in known}) == len(known)
    assert strategy_style("feature_replay+attn_reg") == strategy_style("feature_replay+attn_reg")


def test_hsu_reference_file():
    table = load_published("hsu2018")
    assert table is not None and (table.tolerance_pp, table.tolerance_std) == (2.0, 2.0)
    assert table.cells["split_mnist_class_il"]["Naive rehearsal"].mean == 90.78
    assert table.cells["split_mnist_domain_il"]["Offline (joint)"].std == 0.15
    assert table.cells["split_mnist_task_il"]["Adam (naive)"].n == 10
    assert table.methods["replay_1100"] == "Naive rehearsal"
    assert load_published("no_such_paper") is None


def test_report_imports_neither_torch_nor_avalanche():
    code = (
        "import sys, reports, reports.build, reports.figures; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'avalanche')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "[]"


def test_runs_of_different_suites_are_never_pooled(tmp_path):
    folder = tmp_path / "mixed"
    good, bad = make_matrix(1, 0.9), make_matrix(2, 0.1)
    write(folder / "a", make_run("split_mnist_class_il", "class_il", "naive", 0, good, suite="a", run_id="a1"))
    write(folder / "b", make_run("split_mnist_class_il", "class_il", "naive", 0, bad, suite="b", run_id="b1"))
    out = build_report(folder, tmp_path / "out").parent
    with open(out / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2  # one section per suite, each with its own single seed
    md = (out / "index.md").read_text()
    assert "suite a" in md.replace("\\", "") and "suite b" in md.replace("\\", "")
