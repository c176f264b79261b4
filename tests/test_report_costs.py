"""The report's added-parameter costs (results key ``added_parameters``): table columns, summary.csv and
the cost figure's panel, on hand-made results files. No torch."""

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
