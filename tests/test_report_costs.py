"""The report's costs on hand-made results files: added parameters (results key ``added_parameters``)
in the table columns, summary.csv and the cost figure's panel; the per-run cost summary
(reports/run_costs.py). No torch."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from test_report import make_matrix, make_run, write

from reports import build_report
from reports.aggregate import aggregate
from reports.document import plain
from reports.figures import count_label, plot_cost
from reports.labels import strategy_display
from reports.run_costs import budget_lines, cost_table, main
from reports.runs import load_runs
from reports.tables import ADDED_COLUMNS, COLUMNS, columns_for, summary_table

T = 4
LORA = [18063] * T  # modular_lora on CLINC150: one adapter + 15-intent head per domain
GROWING = [100, 200, 300, 400]  # a strategy whose additions differ per experience: total 1000, mean 250
SCENARIO = "split_text_class_il"


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """modular_lora (2 seeds), a growing strategy, one that records zero, and naive (records nothing);
    plus a scenario where no strategy records added parameters."""
    folder = tmp_path_factory.mktemp("results")
    plan = {"modular_lora": (LORA, 0.99), "growing": (GROWING, 0.8), "zero_adder": ([0] * T, 0.6), "naive": (None, 0.3)}
    for strategy, (added, retention) in plan.items():
        for seed in (0, 1):
            extra = {} if added is None else {"added_parameters": added}
            R = make_matrix(seed + 10 * len(strategy), retention)
            write(folder, make_run(SCENARIO, "class_il", strategy, seed, R, **extra))
    write(folder, make_run("split_mnist_class_il", "class_il", "naive", 0, make_matrix(0, 0.3)))
    return folder


@pytest.fixture(scope="module")
def scenarios(results):
    return {sc.scenario: sc for sc in aggregate(load_runs(results))}


def _by_strategy(sc):
    return {s.strategy: s for s in sc.strategies}


def test_added_parameters_are_summed_and_averaged_per_experience_and_absent_is_nan(scenarios):
    rows = _by_strategy(scenarios[SCENARIO])
    assert rows["modular_lora"].stats["added_parameters"].mean == T * 18063
    assert rows["modular_lora"].stats["added_per_experience"].mean == 18063
    assert rows["growing"].stats["added_parameters"].mean == 1000
    assert rows["growing"].stats["added_per_experience"].mean == 250
    assert rows["zero_adder"].stats["added_parameters"].mean == 0  # recorded zero stays zero
    assert math.isnan(rows["naive"].stats["added_parameters"].mean)  # not recorded: no value, not 0


def test_table_has_added_parameter_columns_only_where_recorded(scenarios):
    assert columns_for(scenarios[SCENARIO])[-2:] == ADDED_COLUMNS
    assert not set(ADDED_COLUMNS) & set(columns_for(scenarios["split_mnist_class_il"]))
    table = summary_table(scenarios[SCENARIO])
    for key in ("average_accuracy", "forgetting", "train_time_s"):  # issue 13: ACC, forgetting, time, added
        assert next(c.label for c in COLUMNS if c.key == key) in table.header
    names = {plain(strategy_display(s)): s for s in ("modular_lora", "growing", "zero_adder", "naive")}
    cells = {names[row[0]]: row[-2:] for row in table.rows}
    assert cells["modular_lora"] == ("72.3 ± 0.0", "18.1 ± 0.0")  # thousands: 4 x 18,063 and 18,063
    assert cells["growing"] == ("1.0 ± 0.0", "0.2 ± 0.0")  # 1,000 in all, 250 per experience
    assert cells["zero_adder"] == ("**0.0 ± 0.0**", "**0.0 ± 0.0**")  # fewest added: best
    assert cells["naive"] == ("—", "—")  # records nothing: no value, not 0


def test_summary_csv_and_documents_carry_added_parameters(results, tmp_path):
    out = tmp_path / "report"
    build_report(results, out)
    with open(out / "summary.csv", newline="") as fh:
        rows = {(r["scenario"], r["strategy"]): r for r in csv.DictReader(fh)}
    lora = rows[(SCENARIO, "modular_lora")]
    assert float(lora["added_parameters_mean"]) == T * 18063
    assert float(lora["added_parameters_per_experience_mean"]) == 18063
    assert rows[(SCENARIO, "naive")]["added_parameters_mean"] == ""
    md = (out / "index.md").read_text(encoding="utf-8")
    assert ADDED_COLUMNS[0].label in md and "72.3 ± 0.0" in md and "**Added params**" in md
    assert ADDED_COLUMNS[1].latex in (out / "tables.tex").read_text(encoding="utf-8")


def _added_axis(fig):
    found = [ax for ax in fig.axes if ax.get_xlabel() == "Parameters added, all experiences"]
    assert len(found) <= 1
    return found[0] if found else None


def test_cost_figure_has_an_added_parameters_panel_with_the_recording_strategies_only(scenarios):
    sc = scenarios[SCENARIO]
    ax = _added_axis(plot_cost(sc))
    assert ax is not None
    xs = sorted(float(c.lines[0].get_xdata()[0]) for c in ax.containers)  # one error bar per strategy
    assert xs == [0.0, 1000.0, T * 18063.0]  # naive (no record) is not drawn, zero_adder is at 0
    acc = {s.stats["added_parameters"].mean: 100 * s.stats["average_accuracy"].mean for s in sc.strategies}
    for c in ax.containers:
        x, y = c.lines[0].get_xdata()[0], c.lines[0].get_ydata()[0]
        assert y == pytest.approx(acc[x])
    assert ax.get_xlim()[0] < 0 < T * 18063 < ax.get_xlim()[1]


def test_cost_figure_without_records_has_no_added_panel(scenarios):
    assert _added_axis(plot_cost(scenarios["split_mnist_class_il"])) is None


@pytest.mark.parametrize("value, text", [(18063, "18.1k"), (2.5e6, "2.5M"), (950, "950"), (0, "0")])
def test_count_label(value, text):
    assert count_label(value) == text


# -- per-run cost summary (reports/run_costs.py) ------------------------------------------------------
@pytest.fixture(scope="module")
def timed(tmp_path_factory) -> Path:
    """replay: 2 runs with CPU seconds recorded; naive: 1 run without (an older file); 1 failed lwf run."""
    folder = tmp_path_factory.mktemp("timed")
    for seed, (wall, cpu) in enumerate([(100.0, 80.0), (140.0, 100.0)]):
        write(folder, make_run(SCENARIO, "class_il", "replay", seed, make_matrix(seed, 0.9), total_time_s=wall,
                               cpu_time_s=cpu, eval_time_s=[2.0] * T, cache_fill_s=5.0 * seed))
    write(folder, make_run(SCENARIO, "class_il", "naive", 0, make_matrix(0, 0.3), total_time_s=60.0))
    error = {"type": "RuntimeError", "message": "boom", "traceback": "...", "experience": 1}
    write(folder, make_run(SCENARIO, "class_il", "lwf", 0, make_matrix(0, 0.5)[:1], status="failed", error=error,
                           total_time_s=30.0, cpu_time_s=20.0, metrics={}))
    return folder


def test_cost_table_gives_per_run_means_and_dashes_for_what_was_not_recorded(timed):
    table = cost_table(aggregate(load_runs(timed)))
    assert table.header[2:] == ("Runs ok", "Failed", "Wall (s)", "Train (s)", "Eval (s)", "Cache fill (s)", "CPU (s)")
    rows = {row[1]: row[2:] for row in table.rows}
    replay, naive, lwf = (rows[plain(strategy_display(s))] for s in ("replay", "naive", "lwf"))
    assert replay == ("2", "0", "120.0", "6.0", "8.0", "2.5", "90.0")  # train: T x (1 + seed) = 4, 8
    assert naive[4] == "0.4" and naive[-1] == "—"  # make_run's eval 0.1 x T; CPU not recorded: not 0
    assert lwf[:3] == ("0", "1", "30.0") and lwf[-1] == "20.0"  # a failed run's time still counts


def test_budget_lines_sum_every_run_and_judge_the_budget(timed):
    runs = load_runs(timed)
    lines = budget_lines(runs, jobs=2, budget_minutes=2.5)
    assert lines[0] == "4 runs: wall 5.5 min in all (serial), CPU 3.3 min."  # 330 s, 200 s
    assert lines[1] == "With --jobs 2: at least 2.8 min of wall time."
    assert lines[2].startswith("Budget 2.5 min: exceeded")
    assert budget_lines(runs, jobs=3, budget_minutes=2.5)[2].startswith("Budget 2.5 min: fits")


def test_run_costs_command(timed, tmp_path, capsys):
    assert main([str(timed), "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "| CPU (s) |" in out and "at least 2.8 min" in out
    assert main([str(tmp_path / "missing")]) == 2
