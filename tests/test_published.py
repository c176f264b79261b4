"""Comparison with a published table (reports/published.py, comparison.py, stats.py) and the cost figure.

Statistics are checked against textbook values; the report is built from a fake results folder whose
accuracies are chosen by hand, so every expected number below can be recomputed on paper. No torch.
"""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

import numpy as np
import pytest
from test_report import make_run, write

from reports import ReportError, build_report
from reports.aggregate import aggregate
from reports.comparison import comparison_blocks
from reports.document import Document
from reports.figures import bytes_label, plot_cost
from reports.markdown import render_markdown
from reports.published import compare, load_published
from reports.runs import load_runs
from reports.stats import Summary, spearman, t_quantile, welch

# -- statistics -----------------------------------------------------------------------------------

# Welch's t-test, Wikipedia example 1 (two samples of 15): t = -2.46, Welch-Satterthwaite df = 24.99
A1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
A2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]


def summary_of(xs: list[float]) -> Summary:
    """Mean, std (ddof 1) and n of a sample (ci95 not needed here)."""
    return Summary(len(xs), statistics.fmean(xs), statistics.stdev(xs), math.nan)


@pytest.mark.parametrize("df, q", [(1.5, 6.016663104), (2.7, 3.392148383), (6.081, 2.439032824), (57.3, 2.002238268)])
def test_t_quantile_non_integer_df(df, q):
    assert t_quantile(0.975, df) == pytest.approx(q, abs=1e-8)  # values of scipy.stats.t.ppf


@pytest.mark.parametrize("df", [1, 2, 5, 10, 30])
def test_t_quantile_both_code_paths_agree(df):
    # integer df: closed form (A&S 26.7.3/4); df + 1e-9: incomplete beta function
    assert t_quantile(0.975, df + 1e-9) == pytest.approx(t_quantile(0.975, df), rel=1e-7)


def test_welch_textbook_example():
    w = welch(summary_of(A1), summary_of(A2))
    assert w.diff / w.se == pytest.approx(-2.4554, abs=1e-4)  # Wikipedia: t = -2.46
    assert w.df == pytest.approx(24.9885, abs=1e-4)  # Wikipedia: 24.99
    assert (w.low, w.high) == (pytest.approx(-3.98410, abs=1e-5), pytest.approx(-0.34924, abs=1e-5))
    assert w.defined and w.contains_zero is False


def test_welch_df_by_hand():
    # s_a^2 / n_a = 20 / 5 = 4, s_b^2 / n_b = 10 / 10 = 1: df = 5^2 / (4^2 / 4 + 1^2 / 9) = 6.0811
    w = welch(Summary(5, 10.0, math.sqrt(20), math.nan), Summary(10, 7.0, math.sqrt(10), math.nan))
    assert w.df == pytest.approx(25 / (4 + 1 / 9))
    assert w.se == pytest.approx(math.sqrt(5))
    assert w.high - w.diff == pytest.approx(2.439025064 * math.sqrt(5), rel=1e-8)  # t(0.975, 6.0811)
    assert w.contains_zero is True  # 3 +- 5.45


def test_welch_undefined_cases_do_not_crash():
    one = welch(Summary(1, 95.0, math.nan, math.nan), Summary(10, 93.0, 1.0, math.nan))
    assert not one.defined and one.contains_zero is None and one.diff == pytest.approx(2.0)
    assert math.isnan(one.df)
    no_std = welch(Summary(3, 95.0, 1.0, math.nan), Summary(0, 93.0, math.nan, math.nan))
    assert not no_std.defined and no_std.contains_zero is None
    exact = welch(Summary(3, 95.0, 0.0, math.nan), Summary(10, 95.0, 0.0, math.nan))
    assert exact.defined and (exact.low, exact.high) == (0.0, 0.0) and exact.contains_zero


def test_spearman_textbook_and_ties():
    iq = [106, 100, 86, 101, 99, 103, 97, 113, 112, 110]  # Wikipedia "Spearman's rank correlation"
    tv = [7, 27, 2, 50, 28, 29, 20, 12, 6, 17]
    assert spearman(iq, tv) == pytest.approx(-29 / 165)  # 1 - 6 * 194 / (10 * 99)
    # ties: ranks (1, 2.5, 2.5, 4) vs (1, 2, 3, 4): Pearson r = 4.5 / sqrt(4.5 * 5) = sqrt(0.9)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(math.sqrt(0.9))
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3])) and math.isnan(spearman([1], [2]))
    with pytest.raises(ValueError, match="length"):
        spearman([1, 2], [1])


# -- reference files ------------------------------------------------------------------------------

TABLE2_SAMPLES = [  # (scenario, row, mean, std) read off Table 2 (shared/REFERENCE_RESULTS.md)
    ("split_mnist_task_il", "Adam (naive)", 93.46, 2.01),
    ("split_mnist_domain_il", "LwF", 71.02, 1.26),
    ("split_mnist_domain_il", "MAS", 68.57, 6.85),
    ("split_mnist_class_il", "Naive rehearsal-C", 95.59, 0.49),
    ("split_mnist_class_il", "RtF", 92.56, 0.21),
    ("split_mnist_class_il", "Offline (joint)", 97.53, 0.30),
]


@pytest.mark.parametrize("scenario, row, mean, std", TABLE2_SAMPLES)
def test_hsu_cells_have_mean_std_n(scenario, row, mean, std):
    cell = load_published("hsu2018").cells[scenario][row]
    assert (cell.mean, cell.std, cell.n) == (mean, std, 10)


def test_hsu_file_is_complete_and_mapped():
    t = load_published("hsu2018")
    assert {sc: len(rows) for sc, rows in t.cells.items()} == {
        "split_mnist_task_il": 15,
        "split_mnist_domain_il": 15,
        "split_mnist_class_il": 15,
    }
    assert all(c.n == 10 and not math.isnan(c.std) for rows in t.cells.values() for c in rows.values())
    assert t.methods == {
        "naive": "Adam (naive)",
        "naive_sgd": "SGD (naive)",
        "naive_adagrad": "Adagrad",
        "l2": "L2",
        "replay_1100": "Naive rehearsal",
        "replay_4400": "Naive rehearsal-C",
        "ewc": "EWC",
        "online_ewc": "Online EWC",
        "si": "SI",
        "mas": "MAS",
        "lwf": "LwF",
        "gem_1100": "GEM",
        "joint": "Offline (joint)",
    }
    assert all(row in rows for row in t.methods.values() for rows in t.cells.values())
    assert set(t.protocol) == {"LwF", "DGR", "RtF"}
    assert all(note == "not in their code: other protocol" for note in t.protocol.values())
    assert "spread" not in t.note and (t.tolerance_pp, t.tolerance_std) == (2.0, 2.0)


LEGACY = """
[meta]
short = "Old et al."
citation = "Old et al. 2017, Table 1"
tolerance_pp = 3.0

[methods]
naive = "Fine-tuning"

[acc_pct.split_mnist_class_il]
naive = 19.71
lwf = 24.17
"""


def test_old_format_loads_with_unknown_spread(tmp_path):
    (tmp_path / "old.toml").write_text(LEGACY)
    t = load_published("old", tmp_path)
    cell = t.cells["split_mnist_class_il"]["Fine-tuning"]
    assert cell.mean == 19.71 and math.isnan(cell.std) and cell.n == 0
    assert t.methods["lwf"] == "lwf" and t.cells["split_mnist_class_il"]["lwf"].mean == 24.17
    assert t.bound_pp(cell) == 3.0  # no std: the floor alone


def test_malformed_cell_names_file_and_cell(tmp_path):
    (tmp_path / "bad.toml").write_text('[cells.s]\n"EWC" = { mean = 1.0, sd = 2.0 }\n')
    with pytest.raises(ReportError, match=r"bad\.toml \[cells\.s\] 'EWC': unknown keys \['sd'\]"):
        load_published("bad", tmp_path)
    (tmp_path / "bad2.toml").write_text('[cells.s]\n"EWC" = "high"\n')
    with pytest.raises(ReportError, match="expected a number or"):
        load_published("bad2", tmp_path)


# -- the comparison in the report -----------------------------------------------------------------

# strategy -> our ACC (percent) per seed, class-IL; published (Table 2): Adam 19.71 +- 0.08,
# Adagrad 19.82 +- 0.09, LwF 24.17 +- 0.33, Naive rehearsal 90.78 +- 0.85 (n = 10 each)
OURS = {
    "naive": [24.9, 25.0, 25.1],  # far above: not consistent, outside 2 pp
    "replay_1100": [90.0, 91.0, 92.0],  # +0.22 with a wide CI: consistent, within
    "lwf": [21.8, 22.0, 22.2],  # -2.17: not consistent, outside max(2, 0.66)
    "naive_adagrad": [20.0],  # a single seed: CI undefined
}
PUBLISHED = {"naive": (19.71, 0.08), "replay_1100": (90.78, 0.85), "lwf": (24.17, 0.33), "naive_adagrad": (19.82, 0.09)}
# ours ranks adagrad < lwf < naive < replay, published naive < adagrad < lwf < replay:
# d = (2, -1, -1, 0), rho = 1 - 6 * 6 / (4 * 15) = 0.4
RHO = 0.4


def acc_matrix(acc_pct: float) -> list[list[float]]:
    """A 2x2 accuracy matrix whose ACC (mean of the last row) is ``acc_pct`` / 100."""
    return [[0.99, 0.1], [acc_pct / 100, acc_pct / 100]]


@pytest.fixture(scope="module")
def hsu_report(tmp_path_factory) -> Path:
    """A report of class-IL runs that declare hsu2018, with hand-chosen accuracies."""
    folder = tmp_path_factory.mktemp("hsu_results")
    for strategy, accs in OURS.items():
        for seed, acc in enumerate(accs):
            run = make_run("split_mnist_class_il", "class_il", strategy, seed, acc_matrix(acc), reference="hsu2018")
            write(folder, run)
    write(folder, make_run("split_mnist_class_il", "class_il", "replay", 0, acc_matrix(95.0), reference="hsu2018"))
    out = tmp_path_factory.mktemp("hsu_report")
    build_report(folder, out)
    return out


def expected(strategy: str) -> tuple[float, float, float]:
    """(difference, CI low, CI high) computed here from the Welch formulas, percent."""
    ours, (mean, std) = OURS[strategy], PUBLISHED[strategy]
    va, vb = statistics.variance(ours) / len(ours), std**2 / 10
    df = (va + vb) ** 2 / (va**2 / (len(ours) - 1) + vb**2 / 9)
    diff = statistics.fmean(ours) - mean
    half = t_quantile(0.975, df) * math.sqrt(va + vb)
    return diff, diff - half, diff + half


def minus(x: float) -> str:
    """Signed, two decimals, with the minus sign the report prints."""
    return f"{x:+.2f}".replace("-", "−")


def md_row(md: str, method: str) -> str:
    """The Markdown comparison row of a published method."""
    section = md.split("### Comparison with", 1)[1]
    return next(line for line in section.splitlines() if line.startswith(f"| {method} |"))


def test_markdown_comparison_has_published_std_ci_verdict_rho(hsu_report):
    md = (hsu_report / "index.md").read_text()
    row = md_row(md, "Adam (naive)")
    diff, low, high = expected("naive")
    assert f"| 25.00 ± 0.10 (n = 3) | 19.71 ± 0.08 (n = 10) | {diff:+.2f} |" in row
    assert f"\\[{minus(low)}, {minus(high)}\\]" in row
    assert "**not consistent**" in row and "**no (bound 2.00)**" in row
    row = md_row(md, "Naive rehearsal")
    _, low, high = expected("replay_1100")
    assert low < 0 < high and f"\\[{minus(low)}, {minus(high)}\\]" in row
    assert "| consistent | yes (bound 2.00) |" in row
    row = md_row(md, "LwF")
    assert "**not consistent**" in row and "**no (bound 2.00)**" in row
    assert row.endswith("| not in their code: other protocol |")
    assert f"Spearman ρ = {RHO:.3f} over n = 4 methods" in md
    assert "|diff\\| ≤ max(2 pp, 2 × std)" in md  # the acceptance column


def test_single_seed_gives_undefined_ci_not_a_crash(hsu_report):
    row = md_row((hsu_report / "index.md").read_text(), "Adagrad")
    assert "| 20.00 (n = 1) | 19.82 ± 0.09 (n = 10) | +0.18 | undefined: ours n = 1 | — |" in row
    assert "undefined (ours n = 1) | yes (bound 2.00) |" in row


def test_rows_in_paper_order_and_missing_rows_listed(hsu_report):
    md = (hsu_report / "index.md").read_text().split("### Comparison with", 1)[1]
    order = [md.index(f"| {m} |") for m in ("Adam (naive)", "Adagrad", "Naive rehearsal", "LwF")]
    assert order == sorted(order)
    missing = next(line for line in md.splitlines() if line.startswith("Published rows with no run"))
    assert "DGR (not in their code: other protocol)" in missing and "Naive rehearsal-C," in missing
    assert "Adam (naive)" not in missing
    assert (
        "Not compared (no row of the published table, see \\[methods\\] in reports/references/hsu2018.toml): Replay."
        in md
    )


def test_checks_section_lists_failures(hsu_report):
    checks = (hsu_report / "index.md").read_text().split("## Checks", 1)[1].split("\n## ", 1)[0]
    assert "2 of 4 strategies fail" in checks and "Naive (fine-tuning), LwF" in checks
    assert "2 of 4 strategies not consistent" in checks


def test_html_and_latex_carry_the_comparison(hsu_report):
    html = (hsu_report / "index.html").read_text()
    assert '<td class="r">19.71 ± 0.08 (n = 10)</td>' in html
    assert "<strong>not consistent</strong>" in html and f"Spearman ρ = {RHO:.3f}" in html
    assert "|diff| ≤ max(2 pp, 2 × std)" in html
    tex = (hsu_report / "tables.tex").read_text()
    table = tex.split(r"\label{tab:clbench-split-mnist-class-il-hsu2018}", 1)[1].split(r"\end{table}", 1)[0]
    _, low, high = expected("naive")
    assert (
        f"$25.00 \\pm 0.10$ ($n = 3$) & $19.71 \\pm 0.08$ ($n = 10$) & $+5.29$ [${low:+.2f}$, ${high:+.2f}$]" in table
    )
    assert r"\textbf{not consistent}" in table and r"LwF$^{\mathrm{a}}$" in table
    assert r"$20.00$ ($n = 1$)" in table and "(CI undefined)" in table
    caption = tex.split(r"\label{tab:clbench-split-mnist-class-il-hsu2018}", 1)[0].rsplit(r"\caption{", 1)[1]
    assert f"Spearman $\\rho$ = {RHO:.3f}" in caption and r"$^{\mathrm{a}}$not in their code" in caption


def test_comparison_csv(hsu_report):
    with open(hsu_report / "comparison.csv", newline="") as fh:
        rows = {r["strategy"]: r for r in csv.DictReader(fh)}
    assert set(rows) == set(OURS)
    for strategy in ("naive", "replay_1100", "lwf"):
        diff, low, high = expected(strategy)
        r = rows[strategy]
        assert float(r["diff_pp"]) == pytest.approx(diff) and float(r["ci95_low_pp"]) == pytest.approx(low)
        assert float(r["ci95_high_pp"]) == pytest.approx(high) and r["published_n"] == "10"
    assert [rows[s]["consistent"] for s in ("naive", "replay_1100", "naive_adagrad")] == ["0", "1", ""]
    assert rows["naive_adagrad"]["ci95_low_pp"] == "" and rows["naive_adagrad"]["within_bound"] == "1"
    assert float(rows["lwf"]["spearman_rho"]) == pytest.approx(RHO) and rows["lwf"]["spearman_n"] == "4"


def test_old_format_reference_renders_unknown_spread(tmp_path):
    (tmp_path / "old.toml").write_text(LEGACY)
    table = load_published("old", tmp_path)
    for seed, acc in enumerate([24.9, 25.0, 25.1]):
        write(tmp_path / "r", make_run("split_mnist_class_il", "class_il", "naive", seed, acc_matrix(acc)))
    (sc,) = aggregate(load_runs(tmp_path / "r"))
    (row,) = compare(sc, table).rows
    assert row.consistent is None and row.bound_pp == 3.0 and row.flagged  # 5.29 > 3
    doc = Document("t")
    doc.add(*comparison_blocks(sc, table))
    md = render_markdown(doc)
    assert "| Fine-tuning |" in md and "| 19.71 (std, n not given) |" in md
    assert "undefined (published std or n unknown)" in md and "bound 3.00, std unknown" in md


# -- costs ----------------------------------------------------------------------------------------


def test_cache_fill_column_only_when_recorded(tmp_path):
    for seed in (0, 1):
        run = make_run("split_text_class_il", "class_il", "naive", seed, acc_matrix(50.0), cache_fill_s=2.0 + seed)
        write(tmp_path / "with", run)
        write(tmp_path / "without", make_run("split_text_class_il", "class_il", "naive", seed, acc_matrix(50.0)))
    md = (build_report(tmp_path / "with", tmp_path / "a").parent / "index.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| Strategy | Seeds"))
    assert header.index("Train time (s)") < header.index("Cache fill (s)") < header.index("Memory (MB)")
    assert "| 2.5 ± 0.7 |" in md  # mean and std of 2.0 and 3.0, one decimal
    with open(tmp_path / "a" / "summary.csv", newline="") as fh:
        assert float(next(csv.DictReader(fh))["cache_fill_s_mean"]) == 2.5
    md = (build_report(tmp_path / "without", tmp_path / "b").parent / "index.md").read_text()
    assert "Cache fill (s)" not in next(line for line in md.splitlines() if line.startswith("| Strategy | Seeds"))
    assert "**Memory**: bytes of stored past data in the form a real buffer keeps it" in md


@pytest.mark.parametrize(
    "value, label", [(0, "0 B"), (512, "512 B"), (862_400, "862 kB"), (3_449_600, "3.45 MB"), (151e6, "151 MB")]
)
def test_bytes_label(value, label):
    assert bytes_label(value) == label


def cost_scenario(memory: dict[str, int | None], tmp_path: Path):
    """One scenario whose strategies keep ``memory`` bytes (None: not recorded)."""
    for i, (strategy, nbytes) in enumerate(memory.items()):
        run = make_run("split_mnist_class_il", "class_il", strategy, 0, acc_matrix(50.0 + 10 * i))
        run["replay_memory"] = None if nbytes is None else {"samples": nbytes // 784, "bytes": nbytes}
        write(tmp_path, run)
    (sc,) = aggregate(load_runs(tmp_path))
    return sc


def test_cost_figure_memory_on_log_axis_with_a_none_panel(tmp_path):
    sc = cost_scenario({"naive": 0, "ewc": 0, "replay_1100": 862_400, "joint": 151_000_000}, tmp_path)
    fig = plot_cost(sc)
    time_ax, none_ax, mem_ax = fig.axes
    assert mem_ax.get_xscale() == "log"
    lo, hi = mem_ax.get_xlim()
    assert lo <= 862_400 / 2 and hi >= 151e6 * 2  # both buffers inside, a decade apart at least
    fig.canvas.draw()  # tick labels are formatted on draw
    labels = {t.get_text() for t in mem_ax.get_xticklabels()}
    assert {"1 MB", "100 MB"} <= labels
    assert [t.get_text() for t in none_ax.get_xticklabels()] == ["none"]
    assert len(none_ax.lines) >= 2 and time_ax.get_xscale() == "linear"


def test_cost_figure_without_zero_memory_or_without_records(tmp_path):
    fig = plot_cost(cost_scenario({"replay_1100": 862_400, "joint": 151_000_000}, tmp_path / "a"))
    assert len(fig.axes) == 2 and fig.axes[1].get_xscale() == "log"
    fig = plot_cost(cost_scenario({"naive": None}, tmp_path / "b"))
    assert any(t.get_text() == "memory not recorded" for t in fig.axes[-1].texts)
    assert np.isfinite(fig.axes[-1].get_xlim()).all()
