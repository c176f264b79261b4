"""The "Does it help?" section (reports/contrasts.py) on hand-made results files: Welch CIs of each
strategy against naive and of each combination against its parts, verdicts, contrasts.csv. No torch."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from test_report import make_run, write

from reports import build_report
from reports.aggregate import aggregate
from reports.contrasts import TITLE, combination_parts, scenario_contrasts
from reports.runs import load_runs

WITH_NAIVE = "split_mnist_class_il"
NO_NAIVE = "split_mnist_task_il"  # combinations only
NOTHING = "permuted_mnist_domain_il"  # neither naive nor a combination: no contrast
T975_DF4 = 2.776445  # Student t 0.975 quantile, 4 degrees of freedom (printed tables)

# scenario -> strategy -> final ACC (fraction) of each seed
PLAN = {
    WITH_NAIVE: {
        "naive": (0.50, 0.52, 0.54),  # mean 52, std 2 (percent)
        "good": (0.60, 0.62, 0.64),  # +10 pp, same std: df = 4
        "bad": (0.40, 0.42, 0.44),  # -10 pp
        "same": (0.51, 0.52, 0.53),  # 0 pp
        "lonely": (0.90,),  # one seed: no CI
        "replay": (0.70, 0.72, 0.74),
        "attn_reg": (0.50, 0.51, 0.52),
        "replay+attn_reg_10": (0.80, 0.82, 0.84),  # part attn_reg_10 absent: matches attn_reg
    },
    NO_NAIVE: {
        "replay": (0.70, 0.72, 0.74),
        "attn_reg": (0.30, 0.31, 0.32),
        "attn_reg_10": (0.40, 0.42, 0.44),
        "replay+attn_reg_10": (0.60, 0.62, 0.64),  # attn_reg_10 present: matches it, not attn_reg
        "lwf+attn_reg": (0.35, 0.36, 0.37),  # no lwf run: only attn_reg
    },
    NOTHING: {"replay": (0.7, 0.71), "ewc": (0.6, 0.61)},
}


def hand_matrix(acc: float) -> list[list[float]]:
    """T = 2 matrix whose last row is constant: ACC = acc exactly, forgetting = 0.9 - acc."""
    return [[0.9, 0.1], [acc, acc]]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("results")
    for scenario, plan in PLAN.items():
        setting = scenario.rsplit("_", 2)[-2] + "_il"
        for strategy, accs in plan.items():
            for seed, acc in enumerate(accs):
                write(folder, make_run(scenario, setting, strategy, seed, hand_matrix(acc)))
    return folder


@pytest.fixture(scope="module")
def contrasts(results) -> dict[str, dict[tuple[str, str], object]]:
    """scenario -> (strategy, reference) -> Contrast."""
    return {sc.scenario: {(c.a.strategy, c.b.strategy): c for c in scenario_contrasts(sc)}
            for sc in aggregate(load_runs(results))}


@pytest.fixture(scope="module")
def report(results, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    build_report(results, out)
    return out


def test_ci_matches_hand_computation(contrasts):
    c = contrasts[WITH_NAIVE][("good", "naive")]
    se = math.sqrt(2.0**2 / 3 + 2.0**2 / 3)  # both std 2 pp over 3 seeds
    assert c.diff.diff == pytest.approx(10.0, abs=1e-9)
    assert c.diff.df == pytest.approx(4.0, abs=1e-9)  # Welch-Satterthwaite with equal variances and n
    assert c.diff.low == pytest.approx(10.0 - T975_DF4 * se, abs=1e-5)  # 5.466
    assert c.diff.high == pytest.approx(10.0 + T975_DF4 * se, abs=1e-5)  # 14.534


@pytest.mark.parametrize(
    ("strategy", "verdict"),
    [("good", "helps"), ("bad", "hurts"), ("same", "no significant difference"), ("lonely", "n/a")],
)
def test_verdicts_in_every_direction(contrasts, strategy, verdict):
    assert contrasts[WITH_NAIVE][(strategy, "naive")].verdict == verdict


def test_single_seed_has_no_interval(contrasts):
    d = contrasts[WITH_NAIVE][("lonely", "naive")].diff
    assert d.diff == pytest.approx(38.0, abs=1e-9)  # the difference of the means is still known
    assert math.isnan(d.low) and math.isnan(d.high) and not d.defined


def test_every_strategy_against_naive_and_combinations_against_their_parts(contrasts):
    pairs = set(contrasts[WITH_NAIVE])
    others = set(PLAN[WITH_NAIVE]) - {"naive"}
    assert {a for a, b in pairs if b == "naive"} == others  # naive itself gets no row
    assert {p for p in pairs if p[1] != "naive"} == {("replay+attn_reg_10", "replay"),
                                                       ("replay+attn_reg_10", "attn_reg")}
    c = contrasts[WITH_NAIVE][("replay+attn_reg_10", "replay")]
    assert c.diff.diff == pytest.approx(10.0, abs=1e-9) and c.verdict == "helps"


def test_scenario_without_naive_has_only_combination_rows(contrasts):
    assert set(contrasts[NO_NAIVE]) == {("replay+attn_reg_10", "replay"), ("replay+attn_reg_10", "attn_reg_10"),
                                        ("lwf+attn_reg", "attn_reg")}
    assert contrasts[NOTHING] == {}


@pytest.mark.parametrize(
    ("name", "present", "parts"),
    [
        ("replay+attn_reg_10", {"replay", "attn_reg_10", "attn_reg"}, ["replay", "attn_reg_10"]),
        ("replay+attn_reg_10", {"replay", "attn_reg"}, ["replay", "attn_reg"]),  # variant suffix dropped
        ("feature_replay+attn_reg", {"feature_replay", "replay", "attn_reg"}, ["feature_replay", "attn_reg"]),
        ("lwf+attn_reg_0.5", {"attn_reg"}, ["attn_reg"]),  # absent part left out; decimal suffix
        ("ewc_2+lwf", {"ewc", "ewc_2", "lwf"}, ["ewc_2", "lwf"]),
        ("attn_reg_10", {"attn_reg"}, []),  # not a combination
    ],
)
def test_combination_parts(name, present, parts):
    assert combination_parts(name, present) == parts


def _csv(report: Path) -> dict[tuple[str, str, str], dict[str, str]]:
    with open(report / "contrasts.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {(r["scenario"], r["strategy"], r["reference"]): r for r in rows}


def test_csv_has_one_row_per_contrast(report, contrasts):
    rows = _csv(report)
    assert len(rows) == sum(len(cs) for cs in contrasts.values()) == 12
    good = rows[(WITH_NAIVE, "good", "naive")]
    assert float(good["diff"]) == pytest.approx(10.0, abs=1e-9)
    assert float(good["ci_low"]) == pytest.approx(10.0 - T975_DF4 * math.sqrt(8 / 3), abs=1e-5)
    assert (good["n_a"], good["n_b"], good["verdict"], float(good["df"])) == ("3", "3", "helps", 4.0)
    lonely = rows[(WITH_NAIVE, "lonely", "naive")]
    assert (lonely["ci_low"], lonely["ci_high"], lonely["n_a"], lonely["verdict"]) == ("", "", "1", "n/a")


def test_section_tables_and_files_list(report):
    md = (report / "index.md").read_text(encoding="utf-8")
    section = md.split(f"## {TITLE}")[1].split("\n## ")[0]
    assert section.count("| Strategy | Compared with |") == 2  # one table per scenario with contrasts
    assert "Permuted" not in section  # NOTHING has no table
    assert "| good | Naive (fine-tuning) | 62.00 ± 2.00 (n = 3) | 28.00 ± 2.00 (n = 3) | +10.00 | [+5.47, +14.53] | **helps** |" in section
    assert "| lonely | Naive (fine-tuning) | 90.00 (n = 1) |" in section
    assert md.index(f"## {TITLE}") < md.index("## Metric definitions")
    assert "`contrasts.csv`" in md.split("## Files")[1]
    assert TITLE in (report / "index.html").read_text(encoding="utf-8")
    assert "tab:clbench-split-mnist-task-il-contrasts" in (report / "tables.tex").read_text(encoding="utf-8")


def test_no_contrast_no_section_no_csv(tmp_path):
    results = tmp_path / "results"
    for seed in (0, 1):
        write(results, make_run(WITH_NAIVE, "class_il", "naive", seed, hand_matrix(0.5)))
    out = tmp_path / "report"
    build_report(results, out)
    assert TITLE not in (out / "index.md").read_text(encoding="utf-8")
    assert not (out / "contrasts.csv").exists()
