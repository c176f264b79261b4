"""The report's "published vs clbench" section for the literature's text protocols (reports/literature.py).

Hand-made results files (no torch): runs whose config says they were built by a protocol scenario,
with matrices whose final row is constant so that every ACC is known by hand; a hand-made
references file whose rankings give a Spearman's rho computed by hand.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from benchmarks.results.metrics import all_metrics
from benchmarks.results.store import run_filename, write_json_atomic
from reports import ReportError, build_report
from reports.aggregate import aggregate
from reports.literature import (
    LITERATURE_FILE,
    compare_source,
    literature_comparisons,
    load_literature,
    scenario_protocol,
)
from reports.runs import load_runs

REFS = """
[meta]
short = "hand"
note = "Hand-made numbers."

[methods]
"Seq" = "naive"
"Star" = "seq_star"
"Proto" = "ncm"
"Kernel" = "klda"

[[sources]]
key = "hand_table"
protocol = "clinc150_vag"
setting = "class_il"
backbone = "Pythia-410m"
short = "Hand 2024, Table 1"
citation = "Hand et al. 2024, Table 1"
repository = "someone/somewhere"
commit = "0123456789abcdef0123456789abcdef01234567"
file = "results.csv"
verified = true
runs = 3
note = "made up"
[sources.cells]
"Seq" = { average_accuracy = 10.0, forgetting = 80.0 }
"Star" = { average_accuracy = 70.0, forgetting = 5.0 }
"Proto" = { average_accuracy = 50.0, forgetting = 1.0 }
"Kernel" = { average_accuracy = 90.0 }
"Generative" = { average_accuracy = 40.0 }

[[not_included]]
what = "Some paper"
why = "only in its PDF"
"""

# strategy -> final accuracy of every experience (mean over seeds); seeds add 0.01 x seed
FINAL = {"naive": 0.3, "seq_star": 0.6, "ncm": 0.9, "replay": 0.8}


def _matrix(final: float, T: int = 3) -> list[list[float]]:
    """R with R[i][j] = 0.95 on the diagonal, ``final`` in the last row, 0.5 between, 0.01 above."""
    R = [[0.01] * T for _ in range(T)]
    for i in range(T):
        for j in range(i + 1):
            R[i][j] = final if i == T - 1 else (0.95 if i == j else 0.5)
    return R


def _run(scenario: str, registered: str, strategy: str, seed: int, task_order: int = 0, suite: str = "lit") -> dict:
    R = _matrix(FINAL[strategy] + 0.01 * seed)
    return {
        "schema_version": 1, "run_id": f"{strategy}{seed}{task_order}feed", "suite": suite, "scenario": scenario,
        "setting": "class_il" if registered.endswith("class_il") else "task_il", "strategy": strategy, "seed": seed,
        "status": "ok", "error": None, "accuracy_matrix": R, "initial_accuracy": None, "metrics": all_metrics(R),
        "train_time_s": [1.0] * len(R), "eval_time_s": [0.1] * len(R), "total_time_s": 5.0,
        "replay_memory": {"samples": 0, "bytes": 0},
        "config": {"scenario": {"name": scenario, "registered": registered, "task_order": task_order}, "seed": seed},
        "provenance": {"git_commit": "abc1234", "packages": {}},
    }


def _write(folder: Path, data: dict) -> None:
    write_json_atomic(folder / run_filename(data["scenario"], data["strategy"], data["seed"], data["run_id"]), data)


@pytest.fixture
def refs(tmp_path) -> Path:
    path = tmp_path / "hand.toml"
    path.write_text(REFS)
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    """clinc15 = clinc150_vag_class_il (naive, seq_star, ncm, replay; 3 seeds); domains = split_text (not a protocol)."""
    out = tmp_path / "results"
    for strategy in FINAL:
        for seed in (0, 1, 2):
            _write(out, _run("clinc15", "clinc150_vag_class_il", strategy, seed))
    for seed in (0, 1):
        _write(out, _run("domains", "split_text_class_il", "naive", seed))
    return out


def _scenarios(folder: Path):
    return {sc.scenario: sc for sc in aggregate(load_runs(folder))}


def test_protocol_of_a_scenario_comes_from_its_results_config(folder):
    scenarios = _scenarios(folder)
    assert scenario_protocol(scenarios["clinc15"], {"clinc150_vag"}) == ("clinc150_vag", 0)
    assert scenario_protocol(scenarios["domains"], {"clinc150_vag"}) is None


def test_rows_values_not_run_and_rho_by_hand(folder, refs):
    lit = load_literature(refs)
    [c] = literature_comparisons(list(_scenarios(folder).values()), lit)
    rows = {(r.method, r.metric): r for r in c.rows}
    seq = rows[("Seq", "average_accuracy")]
    assert seq.strategy == "naive" and seq.published == 10.0
    assert seq.ours.n == 3 and seq.ours.mean == pytest.approx(31.0) and seq.ours.std == pytest.approx(1.0)
    assert rows[("Kernel", "average_accuracy")].status == "not run" and rows[("Kernel", "average_accuracy")].ours is None
    assert rows[("Generative", "average_accuracy")].status == "no counterpart"
    # ACC: published ranks (Seq 10, Star 70, Proto 50) = (1, 3, 2); ours (31, 61, 91) = (1, 2, 3):
    # d = (0, 1, -1), rho = 1 - 6 * 2 / (3 * 8) = 0.5
    rho, n = c.rho["average_accuracy"]
    assert n == 3 and rho == pytest.approx(0.5)
    # forgetting: ours = mean over j < T-1 of (max earlier - final) = 0.95 - final for every strategy here:
    # naive 64, seq_star 34, ncm 4 vs published 80, 5, 1: same order -> rho = 1
    assert rows[("Star", "forgetting")].ours.mean == pytest.approx(34.0)
    assert c.rho["forgetting"] == (pytest.approx(1.0), 3)
    assert c.source.other_backbone


def test_a_source_with_another_task_order_or_setting_is_not_compared(tmp_path, refs):
    out = tmp_path / "r"
    for seed in (0, 1):
        _write(out, _run("c_order1", "clinc150_vag_class_il", "naive", seed, task_order=1))
        _write(out, _run("c_til", "clinc150_vag_task_il", "naive", seed))
    assert literature_comparisons(aggregate(load_runs(out)), load_literature(refs)) == []


def test_rho_is_undefined_with_one_common_method(folder, refs):
    sc = _scenarios(folder)["clinc15"]
    source = load_literature(refs).sources[0]
    c = compare_source(sc, source, {"Seq": "naive"})
    assert c.rho["average_accuracy"][1] == 1 and math.isnan(c.rho["average_accuracy"][0])


def test_report_has_the_section_in_markdown_html_latex_and_csv(folder, refs, monkeypatch, tmp_path):
    from reports import literature

    monkeypatch.setattr(literature, "LITERATURE_FILE", refs)
    out = tmp_path / "report"
    build_report(folder, out)
    md = (out / "index.md").read_text()
    assert "## Published results of these protocols" in md
    section = md.split("## Published results of these protocols")[1].split("## Metric definitions")[0]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| ")]
    assert rows[0][2:6] == ["ACC published (%)", "ACC clbench (%)", "Forgetting published (%)",
                            "Forgetting clbench (%)"]
    seq = next(r for r in rows if r[0] == "| Seq")
    assert seq[2:] == ["10.00", "31.00 ± 1.00 (n = 3)", "80.00", "64.00 ± 1.00 (n = 3)", "Pythia-410m",
                       "Hand 2024, Table 1", "yes |"]
    kernel = next(r for r in rows if r[0] == "| Kernel")
    assert kernel[1] == "klda" and kernel[2:6] == ["90.00", "not run", "–", "–"]
    assert next(r for r in rows if r[0] == "| Generative")[1:4] == ["—", "40.00", "—"]
    assert "ρ = 0.500 over n = 3 methods" in section and "Some paper: only in its PDF" in section
    assert "domains" not in section  # a scenario that is no protocol gets no comparison
    html = (out / "index.html").read_text()
    assert "Published results of these protocols" in html and "31.00 ± 1.00 (n = 3)" in html
    tex = (out / "tables.tex").read_text()
    assert "\\rho = 0.500" in tex and "Hand et al. 2024, Table 1" in tex and "(other backbone)" in tex
    with open(out / "literature.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    kernel = next(r for r in rows if r["method"] == "Kernel")
    assert kernel["status"] == "not run" and kernel["strategy"] == "klda" and kernel["clbench_mean_pct"] == ""
    seq = next(r for r in rows if r["method"] == "Seq" and r["metric"] == "average_accuracy")
    assert float(seq["clbench_mean_pct"]) == pytest.approx(31.0) and float(seq["spearman_rho"]) == pytest.approx(0.5)


def test_no_section_without_protocol_runs(tmp_path, refs):
    out = tmp_path / "r"
    for seed in (0, 1):
        _write(out, _run("domains", "split_text_class_il", "naive", seed))
    build_report(out, tmp_path / "rep")
    assert "Published results of these protocols" not in (tmp_path / "rep" / "index.md").read_text()
    assert not (tmp_path / "rep" / "literature.csv").exists()


def test_the_shipped_references_file_with_a_clinc150_vag_run(folder, tmp_path):
    lit = load_literature()
    [c] = literature_comparisons([_scenarios(folder)["clinc15"]], lit)
    assert c.source.key == "lor2024_t7_clinc150" and c.source.backbone == "Pythia-410m"
    rows = {(r.method, r.metric): r for r in c.rows}
    assert rows[("SEQ (Lin)", "average_accuracy")].published == 12.26
    assert rows[("SEQ (Lin)", "average_accuracy")].ours.mean == pytest.approx(31.0)
    assert rows[("SEQ* (W+FixBC+Cos)", "average_incremental_accuracy")].published == 74.29
    assert rows[("SEQ* (W+FixBC+Cos)", "average_accuracy")].strategy == "seq_star"
    assert rows[("LAMOL_t", "average_accuracy")].status == "no counterpart"


def test_the_shipped_references_file_names_real_protocols_and_sources():
    from benchmarks.scenarios.text_protocols import protocols

    lit = load_literature(LITERATURE_FILE)
    assert {s.protocol for s in lit.sources} <= set(protocols())
    for s in lit.sources:
        assert s.verified and len(s.commit) == 40 and s.repository and s.file and s.other_backbone
        assert all(v >= 0 for cell in s.cells.values() for v in cell.values())
    assert {("clinc150_vag", "class_il"), ("banking77_lor", "class_il"), ("clinc150_plm4cl", "class_il"),
            ("clinc150_plm4cl", "task_il")} == {(s.protocol, s.setting) for s in lit.sources}


def test_malformed_references_are_named(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(REFS.replace("forgetting = 80.0", "accuracy = 80.0"))
    with pytest.raises(ReportError, match=r"bad\.toml \[\[sources\]\] #0 cells 'Seq'.*average_accuracy"):
        load_literature(bad)
    bad.write_text(REFS.replace('setting = "class_il"', 'setting = "class-il"'))
    with pytest.raises(ReportError, match="setting 'class-il' must be one of class_il, task_il"):
        load_literature(bad)


def test_results_config_is_what_the_runner_writes():
    """The runner's results config holds scenario.registered and the params (task_order), which the report reads."""
    from benchmarks.config.spec import RunSpec

    spec = RunSpec(suite="s", scenario="b", scenario_entry="banking77_vag_class_il", setting="class_il",
                   strategy="naive", strategy_entry="naive", seed=0, device="cpu", reference="",
                   scenario_params={"task_order": 2}, model={"name": "minilm"}, strategy_params={}, train={})
    config = json.loads(json.dumps(spec.config()))
    assert config["scenario"]["registered"] == "banking77_vag_class_il" and config["scenario"]["task_order"] == 2
