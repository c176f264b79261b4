"""The literature's text protocols (benchmarks/scenarios/text_protocols.py) and the BANKING77 loader.

Class orders are checked against facts read from the authors' repositories (first intents, sizes,
task orders, the intents left out); streams are built from the real CLINC150 / BANKING77 files of the
offline mirror (small files; tokenized once into the cache). Data-error tests use an empty or a
corrupted mirror in tmp_path.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from benchmarks.data.cache import DataMissingError, mirror_dir
from benchmarks.scenarios import SCENARIOS, build_scenario
from benchmarks.scenarios.text_protocols import protocols, split_text_params

NAMES = ("clinc150_vag", "clinc150_plm4cl", "banking77_vag", "banking77_lor")
needs_mirror = pytest.mark.skipif(
    mirror_dir() is None or not (mirror_dir() / "banking77" / "train.csv").is_file()
    or not (mirror_dir() / "clinc150" / "data_full.json").is_file(),
    reason="needs the offline mirror with clinc150/ and banking77/ (CLBENCH_MIRROR)",
)


def _clinc_intents() -> set[str]:
    from benchmarks.data.clinc150 import load_clinc150

    return set(load_clinc150()[0].labels())


def _banking():
    from benchmarks.data.banking77 import load_banking77

    return load_banking77()


# -- the protocols' facts -----------------------------------------------------------------------------
def test_every_protocol_is_registered_in_both_settings():
    for name in NAMES:
        for setting in ("class_il", "task_il"):
            entry = SCENARIOS.get(f"{name}_{setting}")
            assert entry.meta["setting"] == setting and entry.meta["family"] == "split_text"
            assert entry.meta["protocol"] == name
    assert set(protocols()) == set(NAMES)


def test_clinc150_vag_is_15_by_10_in_label_dict_order():
    p = protocols()["clinc150_vag"]
    groups = p.groups()
    assert [len(g) for g in groups] == [10] * 15
    assert p.class_order[:4] == ("restaurant_reviews", "improve_credit_score", "transfer", "change_language")
    assert p.class_order[-1] == "reset_settings" and "oos" not in p.class_order  # label_dict id 149; 'oos' (150) dropped
    assert p.task_orders == (tuple(range(15)),)  # sequences/clinc150: one line 0..14
    assert p.source["commit"].startswith("a8a2161")


def test_clinc150_plm4cl_orders_the_same_intents_differently():
    vag, plm = protocols()["clinc150_vag"], protocols()["clinc150_plm4cl"]
    assert set(plm.class_order) == set(vag.class_order) and len(plm.class_order) == 150
    assert plm.class_order[:3] == ("transfer", "transactions", "balance")  # label_dic["banking"] first
    assert plm.groups()[0] != vag.groups()[0]


def test_banking77_vag_is_7_by_10_and_leaves_out_the_last_seven_intents():
    p = protocols()["banking77_vag"]
    groups = p.groups()
    assert [len(g) for g in groups] == [10] * 7 and len(p.class_order) == 70
    assert p.class_order[:3] == ("contactless_not_working", "card_payment_wrong_exchange_rate", "compromised_card")
    assert {"transaction_charged_twice", "terminate_account", "exchange_rate"}.isdisjoint(p.class_order)
    assert p.task_orders == ((0, 1, 2, 3, 4, 5, 6), (2, 1, 0, 3, 4, 5, 6), (0, 1, 3, 4, 5, 6, 2))


@needs_mirror
def test_banking77_lor_is_7_by_11_in_categories_json_order():
    p = protocols()["banking77_lor"]
    assert [len(g) for g in p.groups()] == [11] * 7
    categories = json.loads((mirror_dir() / "banking77" / "categories.json").read_text())
    assert list(p.class_order) == categories and len(categories) == 77
    vag = protocols()["banking77_vag"].class_order
    assert list(vag) != categories[:70]  # VAG's order is its own dict, not categories.json


@needs_mirror
def test_protocol_intents_exist_in_the_data():
    assert set(protocols()["clinc150_vag"].class_order) == _clinc_intents()  # 150 in-scope, no oos
    splits, categories = _banking()
    assert set(splits.labels()) == set(categories)
    assert set(protocols()["banking77_vag"].class_order) < set(categories)


def test_task_orders_permute_whole_experiences():
    p = protocols()["banking77_vag"]
    first, second = p.groups(0), p.groups(1)
    assert second[0] == first[2] and second[2] == first[0] and second[3:] == first[3:]
    assert p.groups(2) == first[:2] + first[3:] + (first[2],)


def test_a_task_order_the_protocol_does_not_have_is_refused():
    entry = SCENARIOS.get("banking77_vag_class_il")
    with pytest.raises(ValueError, match=r"task_order = 3: .*3 task order\(s\), 0\.\.2"):
        split_text_params(protocols()["banking77_vag"], entry.params(task_order=3))
    with pytest.raises(ValueError, match="task_order = 1"):
        split_text_params(protocols()["clinc150_vag"], entry.params(task_order=1))


# -- streams on the real data -------------------------------------------------------------------------
def _build(name: str, **params):
    entry = SCENARIOS.get(name)
    return build_scenario(name, entry.params(**params), seed=0)


def _targets(exp) -> list[int]:
    return [int(t) for t in exp.dataset.targets]


@needs_mirror
def test_clinc150_vag_class_il_labels_follow_the_protocol_order():
    sc = _build("clinc150_vag_class_il", test_per_class=2, train_per_class=3)
    info, bench = sc.info, sc.benchmark
    assert info.n_experiences == 15 and info.n_outputs == 150 and info.input_shape == (2, 32)
    assert info.classes_per_experience == tuple(tuple(range(10 * k, 10 * k + 10)) for k in range(15))
    for k, (train, test) in enumerate(zip(bench.train_stream, bench.test_stream)):
        assert Counter(_targets(train)) == {c: 3 for c in range(10 * k, 10 * k + 10)}
        assert Counter(_targets(test)) == {c: 2 for c in range(10 * k, 10 * k + 10)}


@needs_mirror
@pytest.mark.parametrize("task_order", [0, 1])
def test_banking77_vag_class_ids_name_the_protocol_intents(task_order):
    """Intents have different training counts in BANKING77: class id c must carry the count of intent c."""
    splits, _ = _banking()
    counts = Counter(splits.train_labels)
    groups = protocols()["banking77_vag"].groups(task_order)
    order = [label for g in groups for label in g]
    sc = _build("banking77_vag_class_il", task_order=task_order)
    assert sc.info.n_outputs == 70 and sc.info.input_shape == (2, 64)
    seen = Counter()
    for k, exp in enumerate(sc.benchmark.train_stream):
        got = Counter(_targets(exp))
        assert set(got) == set(range(10 * k, 10 * k + 10))
        seen.update(got)
    assert [seen[c] for c in range(70)] == [counts[label] for label in order]
    assert len({counts[label] for label in order}) > 10  # the check can tell intents apart
    test = Counter(t for exp in sc.benchmark.test_stream for t in _targets(exp))
    assert test == {c: 40 for c in range(70)}  # BANKING77: 40 test utterances per intent


@needs_mirror
def test_banking77_lor_task_il_relabels_each_experience():
    sc = _build("banking77_lor_task_il", train_per_class=2, test_per_class=1)
    assert sc.info.n_outputs == 11 and sc.info.n_experiences == 7
    for i, exp in enumerate(sc.benchmark.train_stream):
        assert exp.task_labels == [i]
        assert Counter(_targets(exp)) == {c: 2 for c in range(11)}
    assert sc.info.classes_per_experience[6] == tuple(range(66, 77))


@needs_mirror
def test_clinc150_plm4cl_task_il_has_15_tasks_of_10():
    sc = _build("clinc150_plm4cl_task_il", train_per_class=1, test_per_class=1, keep_experiences=3)
    assert sc.info.n_experiences == 3 and sc.info.n_outputs == 10
    assert [exp.task_labels for exp in sc.benchmark.test_stream] == [[0], [1], [2]]


def test_the_ten_domain_scenarios_keep_their_run_ids():
    """Run ids hash the resolved scenario params; an option added later (hf_encoder's ``tokenizer``) is left
    out at its default, so the 10-domain scenarios' run ids (and results written before it) are unchanged."""
    import dataclasses

    from benchmarks.config.loader import expand

    doc = {"suite": {"seeds": [0], "strategies": ["naive"], "device": "cpu"},
           "scenarios": {"split_text_class_il": {"model": {"name": "minilm"}}}}
    (spec,) = expand(doc, name="t", where="suite.toml")
    assert set(spec.config()["scenario"]) - {"name", "registered"} == {
        "dataset", "path", "train_path", "test_path", "encoding", "text_column", "label_column", "split_column",
        "test_fraction", "split_seed", "groups", "n_experiences", "keep_experiences", "max_length",
        "train_per_class", "test_per_class"}
    other = dataclasses.replace(spec, scenario_params={**spec.scenario_params, "tokenizer": "/some/encoder"})
    assert other.config()["scenario"]["tokenizer"] == "/some/encoder" and other.run_id != spec.run_id
    assert SCENARIOS.get("split_text_class_il").params().dataset == "clinc150"


def test_banking77_without_a_grouping_is_refused():
    with pytest.raises(ValueError, match="'banking77' needs groups"):
        SCENARIOS.get("split_text_class_il").params(dataset="banking77")


@needs_mirror
def test_preflight_names_a_bad_task_order_before_training():
    from benchmarks.config.loader import expand
    from benchmarks.config.preflight import preflight

    doc = {"suite": {"strategies": ["naive"]},
           "scenarios": {"b": {"scenario": "banking77_vag_class_il", "task_order": 5, "model": {"name": "mlp"}}}}
    problems = preflight(expand(doc, name="t", where="test"))
    assert any("scenario 'b'" in p and "task_order = 5" in p for p in problems)


# -- BANKING77 files ----------------------------------------------------------------------------------
def test_banking77_missing_everywhere_names_files_and_places(tmp_path, monkeypatch):
    from benchmarks.data import banking77

    monkeypatch.setenv("CLBENCH_MIRROR", str(tmp_path))  # an empty mirror

    def offline(name, dest, digest, timeout=30.0):
        raise OSError("network is unreachable")

    monkeypatch.setattr(banking77, "_download", offline)
    with pytest.raises(DataMissingError,
                       match=r"train\.csv, test\.csv, categories\.json .*PolyAI.*banking77/.*CLBENCH_MIRROR"):
        banking77.fetch(tmp_path / "cache")


def test_banking77_mirror_copy_with_a_bad_md5_is_refused(tmp_path, monkeypatch):
    from benchmarks.data import banking77

    (tmp_path / "banking77").mkdir()
    for name, _ in banking77.FILES:
        (tmp_path / "banking77" / name).write_text("text,category\r\nhello,card_arrival\r\n")
    monkeypatch.setenv("CLBENCH_MIRROR", str(tmp_path))
    with pytest.raises(DataMissingError, match=r"banking77/train\.csv has the wrong checksum.*replace it"):
        banking77.fetch(tmp_path / "cache")


def test_banking77_cached_file_with_a_bad_md5_is_refused(tmp_path, monkeypatch):
    from benchmarks.data import banking77

    monkeypatch.setenv("CLBENCH_MIRROR", str(tmp_path))  # an empty mirror: the cache alone is read
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "train.csv").write_text("edited\n")
    with pytest.raises(DataMissingError, match=r"cached BANKING77 file .*train\.csv .*wrong checksum.*delete it"):
        banking77.fetch(cache)


@needs_mirror
def test_banking77_loads_from_the_mirror(tmp_path, monkeypatch):
    from benchmarks.data import banking77

    root = banking77.fetch(tmp_path / "cache")  # copied from the mirror, md5-checked
    assert sorted(p.name for p in root.iterdir()) == ["categories.json", "test.csv", "train.csv"]
    splits, categories = _banking()
    assert (len(splits.train_texts), len(splits.test_texts), len(categories)) == (10_003, 3_080, 77)
