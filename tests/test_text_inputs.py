"""Own text data as users have it (two files, other encodings) and bad inputs caught before training.

Each bad input must fail at ``check`` / preflight (or when the suite is expanded), naming the file,
the line where one applies, and the fix. Files are written to tmp_path; the two-file example suite
reads tests/data/own_train.csv and own_test.csv.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from helpers import tiny_doc

from benchmarks.config.loader import ConfigError, expand, load_suite
from benchmarks.config.preflight import preflight
from benchmarks.data.cache import DataMissingError
from benchmarks.data.text import TextDataError
from benchmarks.data.textfile import load_text_file, load_text_files
from benchmarks.scenarios import SCENARIOS

DATA = Path(__file__).parent / "data"
REPO = DATA.parents[1]
TWO_FILES = "benchmarks/suites/examples/own_two_files.toml"
LABELS = ("a", "b", "c", "d")
GROUPS = [["a", "b"], ["c", "d"]]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Every test writes its token cache into its own folder."""
    monkeypatch.setenv("CLBENCH_CACHE", str(tmp_path / "cache"))


def _rows(split: str | None, n: int = 3, labels=LABELS) -> list[dict]:
    rows = [{"text": f"{label} utterance number {i}", "label": label} for label in labels for i in range(n)]
    return [{**r, "split": split} for r in rows] if split else rows


def _csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _doc(strategies=("naive",), seeds=(0,), **scenario) -> dict:
    table = {"scenario": "split_text_class_il", "dataset": "file", "groups": GROUPS, **scenario}
    return {"suite": {"seeds": list(seeds), "strategies": list(strategies), "device": "cpu"},
            "scenarios": {"mine": table}}


def _problems(**scenario) -> list[str]:
    """Preflight problems of a one-scenario suite (what `check` and `run` print before any training)."""
    return preflight(expand(_doc(**scenario), name="t", where="suite.toml"))


def _config_error(doc: dict) -> str:
    with pytest.raises(ConfigError) as info:
        expand(doc, name="t", where="suite.toml")
    return str(info.value)


# -- two files ----------------------------------------------------------------------------------------
def test_two_files_load_with_their_own_sources(tmp_path):
    train = _csv(tmp_path / "train.csv", _rows(None, n=4))
    test = tmp_path / "test.jsonl"  # the two may differ in format
    test.write_text("".join(json.dumps(r) + "\n" for r in _rows(None, n=2)))
    splits = load_text_files(train, test)
    assert (len(splits.train_texts), len(splits.test_texts)) == (16, 8)
    assert splits.train_labels[:4] == ("a",) * 4 and splits.test_texts[0] == "a utterance number 0"
    assert (splits.train_source, splits.test_source) == (str(train), str(test))


def test_two_file_example_suite_passes_preflight(monkeypatch):
    monkeypatch.chdir(REPO)  # the example's paths are relative to the repository root
    specs = load_suite(TWO_FILES)
    assert len(specs) == 3 and specs[0].scenario_params["train_path"] == "tests/data/own_train.csv"
    assert preflight(specs) == []


@pytest.mark.integration
def test_two_file_example_suite_runs_end_to_end(monkeypatch):
    from benchmarks.engine.runner import run_one

    monkeypatch.chdir(REPO)
    (spec,) = load_suite(TWO_FILES, ["suite.strategies=['naive']", "train.epochs=2"])
    result = run_one(spec)
    assert result["status"] == "ok", result["error"]
    assert len(result["accuracy_matrix"]) == 3 and result["accuracy_matrix"][0][0] > 0.5


def test_a_split_column_in_two_files_is_ignored(tmp_path):
    train = _csv(tmp_path / "train.csv", _rows("test"))  # would be all test if read as one file
    test = _csv(tmp_path / "test.csv", _rows("train"))
    splits = load_text_files(train, test)
    assert len(splits.train_texts) == len(splits.test_texts) == 12


@pytest.mark.parametrize(("params", "message"), [
    ({"train_path": "a.csv"}, "train_path and test_path go together"),
    ({"path": "x.csv", "train_path": "a.csv", "test_path": "b.csv"}, "not both"),
    ({"path": ""}, "needs path = .* or train_path and test_path"),
])
def test_file_keys_must_fit_together(params, message):
    assert message.split(" ")[0] in _config_error(_doc(**params))
    with pytest.raises(ValueError, match=message):
        SCENARIOS.get("split_text_class_il").params(dataset="file", n_experiences=2, **params)


def test_clinc150_takes_no_file_keys():
    params = SCENARIOS.get("split_text_class_il").params
    with pytest.raises(ValueError, match="only used with dataset = 'file'"):
        params(train_path="a.csv", test_path="b.csv")
    with pytest.raises(ValueError, match="encoding is only used with dataset = 'file'"):
        params(encoding="latin-1")


def test_same_file_for_train_and_test(tmp_path):
    path = _csv(tmp_path / "d.csv", _rows("train"))
    with pytest.raises(TextDataError, match="same file .*d.csv; for one file with a split column set path"):
        load_text_files(path, tmp_path / "." / "d.csv")


# -- labels without utterances (KeyError inside Avalanche before) ------------------------------------
def test_label_without_test_utterances_is_caught_by_check(tmp_path, capsys):
    from benchmarks.cli import main

    rows = [r for r in _rows("train") + _rows("test") if not (r["label"] == "d" and r["split"] == "test")]
    path = _csv(tmp_path / "d.csv", rows)
    (problem,) = _problems(path=str(path))
    assert f"{path}: group 1 (c, d): label(s) d have no test examples" in problem
    assert "or leave the labels out of groups" in problem
    suite = tmp_path / "s.toml"
    suite.write_text(f'[suite]\nstrategies = ["naive"]\ndevice = "cpu"\n[scenarios.mine]\nscenario = "split_text_class_il"\n'
                     f'dataset = "file"\npath = "{path}"\ngroups = {json.dumps(GROUPS)}\n')
    assert main(["check", "--suite", str(suite)]) == 2
    assert "cannot start" in capsys.readouterr().err


def test_label_missing_from_one_of_two_files_names_that_file(tmp_path):
    train = _csv(tmp_path / "train.csv", _rows(None, labels=("a", "b", "c")))
    test = _csv(tmp_path / "test.csv", _rows(None))
    (problem,) = _problems(train_path=str(train), test_path=str(test))
    assert f"group 1 (c, d): label(s) d have no training examples in {train}" in problem
    (problem,) = _problems(train_path=str(test), test_path=str(train))
    assert f"label(s) d have no test examples in {train}" in problem
    # with n_experiences every label is grouped: a label only in one file is named too
    (problem,) = _problems(train_path=str(train), test_path=str(test), groups=[], n_experiences=2)
    assert f"d have no training examples in {train}" in problem


def test_label_in_groups_but_not_in_the_data_and_listed_twice(tmp_path):
    path = _csv(tmp_path / "d.csv", _rows("train") + _rows("test"))
    (problem,) = _problems(path=str(path), groups=[["a", "zz"], ["b", "b"]])
    assert "group 0: label 'zz' does not occur in the data" in problem
    assert "group 1 lists label 'b' twice; list it once" in problem


# -- encodings ----------------------------------------------------------------------------------------
def _latin1(path: Path) -> Path:
    path.write_bytes("text,label,split\nhello there,a,train\ncafé au lait,b,test\n".encode("latin-1"))
    return path


def test_latin1_file_names_file_line_and_fix_then_loads_with_encoding(tmp_path):
    path = _latin1(tmp_path / "d.csv")
    with pytest.raises(TextDataError, match=rf"{path}:3: byte 0xe9 \(column 4\) is not utf-8 text; .*"
                                             r"encoding = 'latin-1'"):
        load_text_file(path)
    assert load_text_file(path, encoding="latin-1").test_texts == ("café au lait",)
    (problem,) = _problems(path=str(path))  # preflight reports it before training
    assert f"{path}:3: byte 0xe9" in problem


def test_utf8_byte_order_mark_is_dropped(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "text,label,split\ncafé,a,train\n".encode())
    assert load_text_file(path).train_texts == ("café",)  # header "text", not "\ufefftext"
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + b'{"text": "x", "label": "a", "split": "train"}\n')
    assert load_text_file(jsonl).train_labels == ("a",)


def test_utf16_file_gets_the_utf16_hint_and_loads_with_it(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("text,label,split\nhello,a,train\n".encode("utf-16"))
    with pytest.raises(TextDataError, match=r"d.csv:1: .*UTF-16 byte-order mark: set encoding = 'utf-16'"):
        load_text_file(path)
    assert load_text_file(path, encoding="utf-16").train_texts == ("hello",)


def test_mixed_encodings_name_the_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("text,label,split\ncafé,a,train\n".encode() + "thé,b,test\n".encode("latin-1"))
    with pytest.raises(TextDataError, match=r"d.csv:3: .*the file mixes encodings; re-save it in one"):
        load_text_file(path)
    with pytest.raises(TextDataError, match=r"d.csv:2: this line is UTF-8 but encoding = 'cp1252'"):
        load_text_file(path, encoding="cp1252")


def test_single_byte_encoding_on_a_utf8_file_is_refused(tmp_path):
    path = _csv(tmp_path / "d.csv", [{"text": "café", "label": "a", "split": "train"}])
    with pytest.raises(TextDataError, match="the file is UTF-8, but encoding = 'latin-1' would misread"):
        load_text_file(path, encoding="latin-1")
    ascii_path = _csv(tmp_path / "e.csv", _rows("train"))  # plain ASCII reads the same in any of them
    assert len(load_text_file(ascii_path, encoding="latin-1").train_texts) == 12


def test_unknown_encoding_is_a_config_error(tmp_path):
    message = _config_error(_doc(path="d.csv", encoding="utf8x"))
    assert "[scenarios.mine]" in message and "encoding = 'utf8x' is not a known text encoding" in message


# -- files and their structure ------------------------------------------------------------------------
def test_directory_path_says_folder_and_lists_its_files(tmp_path):
    folder = tmp_path / "intents"
    folder.mkdir()
    _csv(folder / "train.csv", _rows(None))
    _csv(folder / "test.csv", _rows(None))
    with pytest.raises(TextDataError, match=r"path = '.*intents' is a folder, not a file \(it holds test.csv, "
                                            r"train.csv\): set path to one .csv .* set train_path and test_path"):
        load_text_file(folder)
    (problem,) = _problems(train_path=str(folder), test_path=str(folder / "test.csv"))
    assert "train_path = " in problem and "is a folder" in problem
    with pytest.raises(DataMissingError, match="does not exist"):
        load_text_file(folder / "nope.csv")


@pytest.mark.parametrize("content", ["", "text,label,split\n", "\n\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "d.csv"
    path.write_text(content)
    with pytest.raises(TextDataError, match=r"d.csv: the file holds no records \(empty, or a header only\)"):
        load_text_file(path)


def test_unquoted_comma_names_the_line_and_the_quoting_fix(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label,split\n"quoted, fine",a,train\n\nturn on the lights, please,b,train\n')
    with pytest.raises(TextDataError, match=r"d.csv:4: 4 fields, but the header has 3 \(text, label, split\); "
                                            r"put a text that holds a comma in double quotes"):
        load_text_file(path)


def test_duplicate_header_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label,text\nx,a,y\n")
    with pytest.raises(TextDataError, match=r"d.csv:1: column\(s\) \['text'\] appear more than once"):
        load_text_file(path)


def test_missing_column_names_the_columns_found_and_the_closest(tmp_path):
    path = _csv(tmp_path / "d.csv", [{"Text": "x", "intent": "a"}])
    with pytest.raises(TextDataError, match=r"no text column 'text'; columns: Text, intent. Set text_column = 'Text'"):
        load_text_file(path)
    with pytest.raises(TextDataError, match=r"no label column 'label'; .* Set label_column to one of them"):
        load_text_file(path, text_column="Text")


def test_jsonl_bad_line_and_missing_field_name_the_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "x", "label": "a"}\n\n{"text": "y", label: "b"}\n')
    with pytest.raises(TextDataError, match=r"d.jsonl:3: not valid JSON .*; write one JSON object per line"):
        load_text_file(path)
    path.write_text('{"text": "x", "label": "a"}\n{"text": "y"}\n')
    with pytest.raises(TextDataError, match=r"d.jsonl:2: no label field 'label' in this record"):
        load_text_file(path)


def test_bad_split_value_names_its_line(tmp_path):
    rows = _rows("train")
    rows[4]["split"] = "validation"
    with pytest.raises(TextDataError, match=r"d.csv:6: column 'split' must hold 'train' or 'test', found 'validation'"):
        load_text_file(_csv(tmp_path / "d.csv", rows))


# -- duplicate lists ----------------------------------------------------------------------------------
def test_duplicate_seeds_and_strategies_are_errors():
    message = _config_error(tiny_doc(["naive"], seeds=(0, 0)))
    assert "[suite]" in message and "seeds = [0, 0] lists [0] more than once" in message
    message = _config_error(tiny_doc(["naive", "replay", "naive"]))
    assert "strategies = ['naive', 'replay', 'naive'] lists ['naive'] more than once" in message
    doc = tiny_doc(["naive"])
    doc["scenarios"]["synthetic_class_il"].update(seeds=[1, 2, 1], strategies=["ewc", "ewc"])
    message = _config_error(doc)
    assert "[scenarios.synthetic_class_il]: seeds = [1, 2, 1] lists [1]" in message
    assert "[scenarios.synthetic_class_il]: strategies = ['ewc', 'ewc'] lists ['ewc']" in message


# -- Transformer depth --------------------------------------------------------------------------------
_MINILM = "model 'minilm' (6 blocks 0..5; 12 heads each)"
_TT = "model 'text_transformer' (3 blocks 0..2 set by n_layers = 3; 4 heads each)"
_VIT = "model 'vit' (2 blocks 0..1 set by depth = 2; 4 heads each)"


@pytest.mark.parametrize(("model", "strategy", "hparams", "message"), [
    ({"name": "minilm"}, "feature_replay", {"split_layer": 7}, f"split_layer = 7 is outside -6..6 for {_MINILM}"),
    ({"name": "minilm"}, "feature_replay", {"split_layer": -7}, "split_layer = -7 is outside -6..6"),
    ({"name": "text_transformer", "n_layers": 3}, "feature_replay", {"split_layer": 4}, f"outside -3..3 for {_TT}"),
    ({"name": "minilm"}, "attn_reg", {"attn_layers": [2, 6]}, f"attn_layers = [2, 6]: [6] beyond {_MINILM}; use 0..5"),
    ({"name": "minilm"}, "attn_reg", {"attn_heads": [12]}, "attn_heads = [12]: [12] beyond model 'minilm'"),
    ({"name": "minilm"}, "attn_reg", {"attn_layers": [1, 1]}, "attn_layers lists [1] more than once"),
    ({"name": "text_transformer", "n_layers": 3}, "feature_replay+attn_reg", {"attn_layers": [3]},
     f"attn_layers = [3]: [3] beyond {_TT}"),
    ({"name": "minilm"}, "feature_replay+attn_reg", {"store": "pooled"},
     "split layer 6 (store = 'pooled') freezes every block of model 'minilm'"),
    ({"name": "minilm", "frozen_layers": 7}, "naive", {},
     "frozen_layers = 7 must be in -1..6 (all-MiniLM-L6-v2 has 6 blocks"),
    ({"name": "text_transformer", "n_layers": 3, "frozen_layers": 4}, "naive", {},
     "frozen_layers = 4 must be in -1..n_layers (n_layers = 3)"),
])
def test_depth_keys_beyond_the_model_fail_at_check(model, strategy, hparams, message):
    doc = _doc([strategy], path="d.csv", model=model)
    doc["hparams"] = {strategy: hparams}
    assert message in _config_error(doc)


def test_vit_depth_and_heads_bound_the_attention_keys():

    doc = tiny_doc(["attn_reg"], model={"name": "vit"})
    doc["hparams"] = {"attn_reg": {"attn_layers": [2], "attn_heads": [4]}}
    message = _config_error(doc)
    assert f"attn_layers = [2]: [2] beyond {_VIT}" in message and "attn_heads = [4]: [4] beyond" in message


@pytest.mark.parametrize(("strategy", "hparams"), [
    ("feature_replay", {"split_layer": 6}), ("feature_replay", {"split_layer": -6}),
    ("attn_reg", {"attn_layers": [0, 5], "attn_heads": [11]}),
    ("feature_replay+attn_reg", {"store": "pooled", "attn_layers": [5]}),
])
def test_depth_keys_at_the_model_boundary_are_accepted(strategy, hparams):
    doc = _doc([strategy], path="d.csv", model={"name": "minilm"})
    doc["hparams"] = {strategy: hparams}
    assert len(expand(doc, name="t", where="suite.toml")) == 1


def test_minilm_shape_matches_the_pretrained_config():
    from benchmarks.data.tokenize import minilm_folder
    from benchmarks.models.minilm import MiniLMParams

    config = json.loads((minilm_folder() / "config.json").read_text())
    assert MiniLMParams().shape()[:2] == (config["num_hidden_layers"], config["num_attention_heads"])


def test_semicolon_separated_or_headerless_csv_gets_a_hint(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text;label\nhello;a\n")
    with pytest.raises(TextDataError, match="columns: text;label. The file seems separated by ';'.*save it comma-separated"):
        load_text_file(path)
    path.write_text("hello there,a\nbye now,b\n")
    with pytest.raises(TextDataError, match="columns: hello there, a. .*must be a header row naming the columns"):
        load_text_file(path)
