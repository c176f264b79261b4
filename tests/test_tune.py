"""The tuning protocol (benchmarks/tuning, docs/tuning.md): fragment, resume, no test data, provenance."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

from benchmarks.config.loader import load_suite
from benchmarks.core.typed import ConfigError
from benchmarks.results.store import hparams_label

SUITE = """
[suite]
seeds = [0]
strategies = ["naive", "lwf"]
device = "cpu"
{include}

[train]
epochs = 1
batch_size = 16
eval_batch_size = 64
lr = 0.01

[hparams.lwf]
temperature = 3.0

[scenarios.syn]
scenario = "synthetic_class_il"
n_classes = 6
n_experiences = 3
train_per_class = 8
test_per_class = 4

[tune]
k = 2
trials = 2
validation_fraction = 0.25
sampler = "random"

[tune.train]
lr = {{log = [0.001, 0.1]}}

[tune.space.lwf]
alpha = {{uniform = [0.0, 2.0]}}
"""


def write_suite(folder: Path, include: str = "", name: str = "syn") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(SUITE.format(include=include))
    return path


def run_tune(suite: Path, results: Path, overrides=(), device: str = "cpu", **kw):
    from benchmarks.tuning.study import tune

    return tune(str(suite), list(overrides), device, results=results, log=lambda line: None, **kw)


def studies(results: Path, suite: str = "syn"):
    import optuna

    storage = f"sqlite:///{results / 'tune' / f'{suite}.db'}"
    return {s.study_name: optuna.load_study(study_name=s.study_name, storage=storage)
            for s in optuna.get_all_study_summaries(storage)}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """One tuning of the tiny suite (2 trials per method), shared by the tests that read its outputs."""
    folder = tmp_path_factory.mktemp("tune")
    suite = write_suite(folder)
    fragment, entries = run_tune(suite, folder / "results")
    return folder, suite, fragment, entries


def test_tune_writes_a_fragment_that_a_suite_includes(tuned):
    folder, _, fragment, _entries = tuned
    assert fragment == folder / "tuned" / "syn.toml"
    doc = tomllib.loads(fragment.read_text())
    assert set(doc["tuned"]["syn"]) == {"naive", "lwf"}
    lwf = doc["tuned"]["syn"]["lwf"]
    assert set(lwf["hparams"]) == {"alpha"} and set(lwf["train"]) == {"lr"}
    assert lwf["k"] == 2 and lwf["trials"] == 2 and lwf["protocol"] == "chaudhry2019"
    assert 0.0 <= lwf["score"] <= 1.0
    assert fragment.read_text().startswith("# clbench tuned hyper-parameters")
    # a suite that includes it runs with the tuned values (they win over [train] and [hparams.lwf])
    including = write_suite(folder, include='include = ["tuned/syn.toml"]', name="syn_tuned")
    specs = {s.strategy: s for s in load_suite(str(including))}
    assert specs["lwf"].train["lr"] == pytest.approx(lwf["train"]["lr"]) != 0.01
    assert specs["lwf"].strategy_params["alpha"] == pytest.approx(lwf["hparams"]["alpha"])
    assert specs["lwf"].strategy_params["temperature"] == 3.0  # not searched: the suite's value stays
    assert specs["naive"].train["lr"] == pytest.approx(doc["tuned"]["syn"]["naive"]["train"]["lr"])
    # and `tune` itself starts from the suite without its fragments
    assert {s.train["lr"] for s in load_suite(str(including), include=False)} == {0.01}


def test_every_method_gets_the_same_budget(tuned):
    folder = tuned[0]
    counts = {name: len(s.trials) for name, s in studies(folder / "results").items()}
    assert counts == {"syn/naive": 2, "syn/lwf": 2}


def test_resuming_does_not_redo_finished_trials(tmp_path, monkeypatch):
    from benchmarks.engine import executors

    suite, results = write_suite(tmp_path), tmp_path / "results"
    run_tune(suite, results, ["tune.strategies=['naive']", "tune.trials=2"])
    first = [(t.number, t.params, t.value) for t in studies(results)["syn/naive"].trials]
    calls = []
    real = executors.run_with_threads
    monkeypatch.setattr(executors, "run_with_threads", lambda spec, threads: calls.append(spec) or real(spec, threads))
    run_tune(suite, results, ["tune.strategies=['naive']", "tune.trials=2"])  # budget already spent
    assert calls == []
    run_tune(suite, results, ["tune.strategies=['naive']", "tune.trials=3"])  # one more trial
    assert len(calls) == 1
    trials = studies(results)["syn/naive"].trials
    assert [(t.number, t.params, t.value) for t in trials[:2]] == first
    assert len(trials) == 3 and trials[2].params != trials[0].params  # a resumed sampler draws a new point
    # the fragment keeps the pairs this invocation did not tune
    _, entries = run_tune(suite, results, ["tune.strategies=['lwf']", "tune.trials=1"])
    assert set(entries) == {("syn", "naive"), ("syn", "lwf")} and entries[("syn", "naive")]["trials"] == 3


def test_a_trial_cut_off_by_an_interrupt_is_run_again(tmp_path):
    from optuna.trial import TrialState

    suite, results = write_suite(tmp_path), tmp_path / "results"
    run_tune(suite, results, ["tune.strategies=['naive']", "tune.trials=1"])
    studies(results)["syn/naive"].ask()  # left RUNNING, as by a killed process
    run_tune(suite, results, ["tune.strategies=['naive']", "tune.trials=2"])
    states = [t.state for t in studies(results)["syn/naive"].trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]


def test_a_changed_protocol_does_not_continue_a_study(tmp_path):
    suite, results = write_suite(tmp_path), tmp_path / "results"
    run_tune(suite, results, ["tune.strategies=['naive']", "tune.trials=1"])
    with pytest.raises(ConfigError, match="another \\[tune\\] protocol"):
        run_tune(suite, results, ["tune.strategies=['naive']", "tune.trials=1", "tune.k=1"])
    with pytest.raises(ConfigError, match="another \\[tune\\] protocol"):  # a setting it does not search
        run_tune(suite, results, ["tune.strategies=['naive']", "tune.trials=1", "train.batch_size=8"])
    run_tune(suite, results, ["tune.strategies=['naive']", "tune.trials=2", "train.lr=0.5"])  # searched: continues


# -- test data never reaches the tuner ---------------------------------------------------------------------


class PoisonedBenchmark:
    """A benchmark whose test stream fails on access: only ``train_stream`` may be read."""

    def __init__(self, bench) -> None:
        self._bench = bench

    @property
    def train_stream(self):
        return self._bench.train_stream

    def __getattr__(self, name):
        raise AssertionError(f"the tuner read benchmark.{name}: only train_stream is allowed")


def poison(monkeypatch):
    from benchmarks import scenarios
    from benchmarks.scenarios.base import Scenario

    real = scenarios.build_scenario

    def build(*args, **kwargs):
        sc = real(*args, **kwargs)
        return Scenario(PoisonedBenchmark(sc.benchmark), sc.info)

    monkeypatch.setattr(scenarios, "build_scenario", build)


def test_the_poison_catches_a_run_that_reads_test_data(monkeypatch):
    from helpers import tiny_specs

    from benchmarks.engine.runner import run_one

    poison(monkeypatch)
    (spec,) = tiny_specs(["naive"])
    result = run_one(spec)  # an ordinary run evaluates on the test stream
    assert result["status"] == "failed" and "only train_stream is allowed" in result["error"]["message"]


def test_tuning_never_reads_test_data(tmp_path, monkeypatch):
    poison(monkeypatch)
    _, entries = run_tune(write_suite(tmp_path), tmp_path / "results", ["tune.strategies=['naive']"])
    assert entries[("syn", "naive")]["trials"] == 2  # both trials completed without touching test data
    assert 0 < entries[("syn", "naive")]["score"] <= 1


def _inputs(dataset) -> set[bytes]:
    from benchmarks.fastpath.gather import dense, gather_items

    return {row.numpy().tobytes() for row in dense(gather_items(dataset)[0])}


def test_holdout_has_the_first_k_experiences_training_data_split_disjointly():
    from benchmarks.scenarios import SCENARIOS, build_scenario
    from benchmarks.tuning.holdout import holdout_scenario

    params = SCENARIOS.get("synthetic_class_il").params(n_classes=6, n_experiences=3, train_per_class=8)
    scenario = build_scenario("synthetic_class_il", params, seed=0)
    held = holdout_scenario(scenario, experiences=2, validation_fraction=0.25, seed=0)
    assert held.info.n_experiences == 2 and len(held.benchmark.train_stream) == len(held.benchmark.test_stream) == 2
    test_inputs = set().union(*(_inputs(e.dataset) for e in scenario.benchmark.test_stream))
    for i in range(2):
        train, val = held.benchmark.train_stream[i].dataset, held.benchmark.test_stream[i].dataset
        original = _inputs(scenario.benchmark.train_stream[i].dataset)
        assert _inputs(train).isdisjoint(_inputs(val))
        assert _inputs(train) | _inputs(val) == original  # only this experience's training data
        assert not (_inputs(train) | _inputs(val)) & test_inputs
        assert sorted(val.targets) == sorted(2 * [2 * i, 2 * i + 1])  # 25% of each class's 8 samples
    with pytest.raises(ValueError, match="k = 4"):
        holdout_scenario(scenario, experiences=4, validation_fraction=0.25, seed=0)


# -- provenance ----------------------------------------------------------------------------------------------


def test_provenance_records_default_hand_set_and_tuned(tuned):
    from benchmarks.engine.runner import failed_result

    folder, suite, fragment, _ = tuned
    plain = {s.strategy: s for s in load_suite(str(suite), ["hparams.lwf.alpha=0.5"])}
    lwf = plain["lwf"].sources
    assert lwf["strategy"]["temperature"] == {"source": "hand-set", "from": f"{suite} [hparams.lwf]"}
    assert lwf["strategy"]["alpha"] == {"source": "hand-set", "from": "--set hparams.lwf.alpha"}
    assert lwf["train"]["lr"]["source"] == "hand-set" and lwf["train"]["momentum"]["source"] == "default"
    assert lwf["train"]["momentum"]["from"] == "strategies.base.TrainConfig"
    assert "tuned" not in lwf and hparams_label(lwf) == "hand-set"
    assert failed_result(plain["lwf"], RuntimeError("x"))["hparams_provenance"] == lwf  # written to results

    including = write_suite(folder, include='include = ["tuned/syn.toml"]', name="syn_prov")
    tuned_lwf = {s.strategy: s for s in load_suite(str(including))}["lwf"].sources
    assert tuned_lwf["strategy"]["alpha"] == {"source": "tuned", "from": str(fragment)}
    assert tuned_lwf["train"]["lr"] == {"source": "tuned", "from": str(fragment)}
    assert tuned_lwf["strategy"]["temperature"]["source"] == "hand-set"
    assert tuned_lwf["tuned"]["k"] == 2 and tuned_lwf["tuned"]["trials"] == 2 and "score" in tuned_lwf["tuned"]
    assert hparams_label(tuned_lwf) == "tuned (k=2, 2 trials)"


def test_provenance_of_untouched_keys_is_the_documented_default():
    from helpers import tiny_doc

    from benchmarks.config.loader import expand

    doc = tiny_doc(["lwf"])
    del doc["train"]
    (spec,) = expand(doc, name="tiny", where="test")
    alpha = spec.sources["strategy"]["alpha"]
    assert alpha["source"] == "default" and alpha["from"] == "strategies.lwf.LwFParams"
    assert alpha["doc"].startswith("alpha: distillation weight")
    assert hparams_label(spec.sources) == "default" and hparams_label(None) is None


# -- validation before any trial --------------------------------------------------------------------------


@pytest.mark.parametrize("override, message", [
    ("tune.kk=2", "unknown key 'kk'; did you mean 'k'"),
    ("tune.k=0", "k must be >= 1"),
    ("tune.space.lwf.alpha={log=[0.0, 1.0]}", "log needs lo > 0"),
    ("tune.space.lwf.alpha={int=[0, 2]}", "int does not fit the float key"),
    ("tune.space.lwf.alpha={uniform=[-1.0, 1.0]}", "alpha must be >= 0"),
    ("tune.space.lwf.alfa={uniform=[0.0, 1.0]}", "has no key 'alfa'"),
    ("tune.space.lwf.alpha={between=[0.0, 1.0]}", "must be one of {log"),
    ("tune.space.ewk.ewc_lambda={log=[1.0, 10.0]}", "'ewk' is neither a registered strategy"),
    ("tune.strategies=['naive', 'gem']", "run by none of the tuned scenarios"),
    ("tune.scenarios=['nope']", "does not have"),
    ("tune.train.epochs={choice=[1.5]}", "train.epochs: must be int"),
])
def test_a_bad_tune_table_fails_before_any_trial(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message.replace("[", "\\[").replace("{", "\\{").replace("(", "\\(")):
        load_suite(str(write_suite(tmp_path)), [override])


def test_tune_checks_k_against_the_built_scenario(tmp_path):
    with pytest.raises(ConfigError, match="k = 5, but scenario 'syn' has 3 experiences"):
        run_tune(write_suite(tmp_path), tmp_path / "results", ["tune.k=5"])


def test_tune_checks_the_device_before_any_trial(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: --device cuda is valid here")
    with pytest.raises(ConfigError, match="cuda"):
        run_tune(write_suite(tmp_path), tmp_path / "results", device="cuda")
    assert not (tmp_path / "results" / "tune" / "syn.db").exists()


def test_a_bad_fragment_or_include_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="'tuned/none.toml' does not exist"):
        load_suite(str(write_suite(tmp_path, include='include = ["tuned/none.toml"]')))
    (tmp_path / "tuned").mkdir()
    (tmp_path / "tuned" / "bad.toml").write_text(
        '[tuned.syn.lwf]\nhparams = { alpha = 0.5 }\nscore = 0.9\nsource = "me"\n'
        '[tuned.other.naive]\ntrain = { lr = 0.1 }\n[train]\nlr = 1.0\n')
    with pytest.raises(ConfigError) as info:
        load_suite(str(write_suite(tmp_path, include='include = ["tuned/bad.toml"]')))
    assert any("unknown table [train]" in p for p in info.value.problems)
    (tmp_path / "tuned" / "bad.toml").write_text(
        '[tuned.syn.lwf]\nhparams = { alpha = -0.5 }\nsource = "me"\n[tuned.other.naive]\ntrain = { lr = 0.1 }\n')
    with pytest.raises(ConfigError) as info:
        load_suite(str(write_suite(tmp_path, include='include = ["tuned/bad.toml"]')))
    problems = "\n".join(info.value.problems)
    assert "unknown key 'source'" in problems and "no scenario 'other'" in problems and "alpha must be >= 0" in problems


def test_the_report_shows_where_hyper_parameters_came_from(tmp_path):
    import json

    from reports.aggregate import aggregate
    from reports.runs import load_runs
    from reports.tables import summary_table

    def result(strategy: str, seed: int, sources) -> dict:
        return {"schema_version": 1, "scenario": "syn", "setting": "class_il", "strategy": strategy, "seed": seed,
                "status": "ok", "accuracy_matrix": [[0.9, 0.0], [0.5, 0.8]], "metrics": {},
                **({"hparams_provenance": sources} if sources else {})}

    tuned = {"strategy": {"alpha": {"source": "tuned"}}, "train": {}, "tuned": {"k": 2, "trials": 12}}
    hand = {"strategy": {"alpha": {"source": "hand-set"}}, "train": {}}
    for i, (strategy, sources) in enumerate([("lwf", tuned), ("naive", hand), ("naive", None)]):
        (tmp_path / f"r{i}.json").write_text(json.dumps(result(strategy, i, sources)))
    (scenario,) = aggregate(load_runs(tmp_path))
    table = summary_table(scenario)
    column = table.header.index("Hyper-parameters")
    cells = {row[0]: row[column] for row in table.rows}
    assert cells == {"LwF": "tuned (k=2, 12 trials)", "Naive (fine-tuning)": "hand-set"}
    (tmp_path / "r0.json").unlink()
    (tmp_path / "r1.json").unlink()  # results without provenance (older files): no column
    (scenario,) = aggregate(load_runs(tmp_path))
    assert "Hyper-parameters" not in summary_table(scenario).header


def test_a_task_il_stream_tunes_too(tmp_path):
    """Task labels survive the split (multi-head models, the evaluator's per-task metric names)."""
    _, entries = run_tune(write_suite(tmp_path), tmp_path / "results",
                          ["scenarios.syn.scenario='synthetic_task_il'", "tune.strategies=['lwf']", "tune.trials=1"])
    assert entries[("syn", "lwf")]["trials"] == 1 and 0.5 < entries[("syn", "lwf")]["score"] <= 1
