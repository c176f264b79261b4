"""Suite validation: every problem reported at once, with where it is and how to fix it."""

from __future__ import annotations

import pytest
from helpers import tiny_doc

from benchmarks.config.loader import apply_overrides, expand, load_suite, parse_override
from benchmarks.core.typed import ConfigError


def _problems(doc) -> list[str]:
    with pytest.raises(ConfigError) as info:
        expand(doc, name="t", where="t.toml")
    return info.value.problems


def test_valid_doc_expands_to_scenarios_x_strategies_x_seeds():
    specs = expand(tiny_doc(["naive", "ewc"], seeds=(0, 1, 2)), name="t", where="t.toml")
    assert len(specs) == 6
    assert {(s.strategy, s.seed) for s in specs} == {(n, k) for n in ("naive", "ewc") for k in (0, 1, 2)}


def test_unknown_strategy_suggests_closest_name():
    (problem,) = _problems(tiny_doc(["ewcc"]))
    assert "unknown strategy 'ewcc'" in problem and "did you mean 'ewc'" in problem


def test_unknown_scenario_and_key_and_wrong_type_all_reported_together():
    doc = tiny_doc(["naive"])
    doc["scenarios"]["split_mnist_clas_il"] = {}
    doc["train"]["epoch"] = 2
    doc["train"]["lr"] = "fast"
    problems = _problems(doc)
    text = "\n".join(problems)
    assert "split_mnist_clas_il" in text and "did you mean 'split_mnist_class_il'" in text
    assert "unknown key 'epoch'; did you mean 'epochs'" in text
    assert "lr must be float" in text
    assert len(problems) >= 3


@pytest.mark.parametrize(
    "hparams,message",
    [({"ewc": {"ewc_lambda": -1.0}}, "ewc_lambda must be >= 0"),
     ({"replay": {"mem_size": 0}}, "mem_size must be >= 1"),
     ({"ewc": {"ewc_lamda": 1.0}}, "did you mean 'ewc_lambda'")],
)
def test_impossible_strategy_values_are_errors(hparams, message):
    doc = tiny_doc(["ewc", "replay"])
    doc["hparams"] = hparams
    assert any(message in p for p in _problems(doc))


def test_more_experiences_than_classes_is_an_error():
    problems = _problems(tiny_doc(["naive"], n_classes=4, n_experiences=8))
    assert any("more experiences than classes" in p for p in problems)


def test_booleans_are_not_numbers_and_ints_widen_to_float():
    doc = tiny_doc(["ewc"])
    doc["hparams"] = {"ewc": {"ewc_lambda": 5}}
    (spec,) = expand(doc, name="t", where="t")
    assert spec.strategy_params["ewc_lambda"] == 5.0
    doc["train"]["epochs"] = True
    assert any("epochs must be int" in p for p in _problems(doc))


def test_overrides_parse_toml_values_and_create_tables():
    assert parse_override("train.epochs=3") == (["train", "epochs"], 3)
    assert parse_override("suite.seeds=[0,1]") == (["suite", "seeds"], [0, 1])
    assert parse_override("suite.device=cpu") == (["suite", "device"], "cpu")
    doc = apply_overrides({"train": {"epochs": 1}}, ["train.epochs=2", "hparams.ewc.ewc_lambda=7.5"])
    assert doc == {"train": {"epochs": 2}, "hparams": {"ewc": {"ewc_lambda": 7.5}}}
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_override("train.epochs")


def test_per_setting_defaults_and_precedence():
    (task,) = expand(tiny_doc(["ewc"], scenario="synthetic_task_il"), name="t", where="t")
    (cls,) = expand(tiny_doc(["ewc"], scenario="synthetic_class_il"), name="t", where="t")
    assert task.strategy_params["ewc_lambda"] == 100.0 and cls.strategy_params["ewc_lambda"] == 600.0
    doc = tiny_doc(["ewc"])
    doc["hparams"] = {"ewc": {"ewc_lambda": 1.0}}
    doc["scenarios"]["synthetic_class_il"]["hparams"] = {"ewc": {"ewc_lambda": 2.0}}
    (spec,) = expand(doc, name="t", where="t")
    assert spec.strategy_params["ewc_lambda"] == 2.0


def test_variants_change_train_settings_and_keep_their_name():
    doc = tiny_doc(["naive", "naive_sgd"])
    doc["variants"] = {"naive_sgd": {"strategy": "naive", "train": {"optimizer": "sgd", "lr": 0.01}}}
    specs = {s.strategy: s for s in expand(doc, name="t", where="t")}
    assert specs["naive_sgd"].strategy_entry == "naive" and specs["naive_sgd"].train["optimizer"] == "sgd"
    assert specs["naive"].train["optimizer"] == "adam"
    assert specs["naive"].run_id != specs["naive_sgd"].run_id


def test_run_id_is_stable_and_depends_on_config():
    a = expand(tiny_doc(["naive"]), name="t", where="t")[0]
    b = expand(tiny_doc(["naive"]), name="t", where="t")[0]
    c = expand(tiny_doc(["naive"], noise=0.4), name="t", where="t")[0]
    assert a.run_id == b.run_id != c.run_id


@pytest.mark.parametrize("suite", ["quick", "default", "hsu2018", "feature_replay"])
def test_shipped_suites_are_valid(suite):
    assert len(load_suite(suite)) > 0


def test_unknown_suite_lists_known_ones():
    with pytest.raises(ConfigError, match="known suites: .*quick"):
        load_suite("quik")
