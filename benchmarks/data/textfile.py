"""Bring your own text data: labelled utterances from one file with a split column, or from two files.

- One file (``path``): (text, label[, split]) records. With a split column its values must be ``train``
  or ``test``; without one, a seeded, per-label ``test_fraction`` of the examples becomes the test
  split (fixed ``split_seed``, so every run of a suite is evaluated on the same examples).
- Two files (``train_path`` and ``test_path``), as many public data sets ship: (text, label) records
  in each; a split column, if any, is ignored. The two may differ in format (.csv / .jsonl).

Reading, decoding and line numbers: benchmarks/data/records.py. Columns are configurable.
"""

from __future__ import annotations

import difflib
import random
from pathlib import Path

from benchmarks.data.records import Records, read_records
from benchmarks.data.text import TextDataError, TextSplits


def _column(records: Records, name: str, what: str) -> list[str]:
    """Values of column ``name`` as stripped strings; errors for a missing column or an empty value."""
    path = records.path
    if name not in records.columns:
        raise TextDataError(f"{path}: no {what} column {name!r}; columns: {', '.join(records.columns)}. "
                            + _column_fix(records, name, what))
    missing = [i for i, row in enumerate(records.rows) if name not in row]  # JSON lines may omit a key
    if missing:
        raise TextDataError(f"{records.at(missing[0])}: no {what} field {name!r} in this record; add it")
    values = ["" if row[name] is None else str(row[name]).strip() for row in records.rows]
    empty = [records.lines[i] for i, v in enumerate(values) if not v]
    if empty:
        lines = ", ".join(map(str, empty[:10])) + (" ..." if len(empty) > 10 else "")
        raise TextDataError(f"{path}: empty {what} (column {name!r}) on line(s) {lines}; fill or remove them")
    return values


def _closest(name: str, columns: tuple[str, ...]) -> str | None:
    """The column closest to ``name`` ignoring case (e.g. "Text" for "text"), or None."""
    lower = {c.lower(): c for c in columns}
    close = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.6)
    return lower[close[0]] if close else None


def _column_fix(records: Records, name: str, what: str) -> str:
    """How to fix a missing column: another separator, a close name, or the header row."""
    csv_file = records.path.suffix.lower() == ".csv"
    if csv_file and len(records.columns) == 1 and any(sep in records.columns[0] for sep in ";\t|"):
        return "The file seems separated by ';', tabs or '|': save it comma-separated"
    close = _closest(name, records.columns)
    if close:
        return f"Set {what}_column = {close!r} in the scenario"
    header = "; the first line of a .csv must be a header row naming the columns" if csv_file else ""
    return f"Set {what}_column to one of them in the scenario{header}"


def _labelled(records: Records, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    return _column(records, text_column, "text"), _column(records, label_column, "label")


def load_text_file(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    split_column: str = "split",
    test_fraction: float = 0.2,
    split_seed: int = 0,
    encoding: str = "utf-8",
) -> TextSplits:
    """Read a user's labelled utterances from one file and split them into train and test.

    Args:
        path: the .csv or .jsonl file.
        text_column: column holding the utterance.
        label_column: column holding the label (any string).
        split_column: column holding "train"/"test"; when the file has no such column the split is drawn.
        test_fraction: fraction of each label's examples drawn for test when there is no split column.
        split_seed: seed of that draw.
        encoding: the file's text encoding (default UTF-8).
    """
    records = read_records(path, encoding=encoding)
    texts, labels = _labelled(records, text_column, label_column)
    if split_column in records.columns:
        is_test = _split_values(records, _column(records, split_column, "split"), split_column)
    else:
        is_test = _draw_test(labels, test_fraction, split_seed)
    train = [i for i in range(len(texts)) if not is_test[i]]
    test = [i for i in range(len(texts)) if is_test[i]]
    return TextSplits(
        train_texts=tuple(texts[i] for i in train), train_labels=tuple(labels[i] for i in train),
        test_texts=tuple(texts[i] for i in test), test_labels=tuple(labels[i] for i in test),
        source=str(records.path),
    )


def load_text_files(
    train_path: str | Path,
    test_path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    encoding: str = "utf-8",
) -> TextSplits:
    """Read a data set that ships as separate train and test files (same columns in both).

    Args:
        train_path: the training .csv or .jsonl file.
        test_path: the test .csv or .jsonl file.
        text_column: column holding the utterance.
        label_column: column holding the label.
        encoding: text encoding of both files.
    """
    train = read_records(train_path, encoding=encoding, key="train_path")
    test = read_records(test_path, encoding=encoding, key="test_path")
    if train.path.resolve() == test.path.resolve():
        raise TextDataError(f"train_path and test_path are the same file {train.path}; "
                            "for one file with a split column set path instead")
    train_texts, train_labels = _labelled(train, text_column, label_column)
    test_texts, test_labels = _labelled(test, text_column, label_column)
    return TextSplits(
        train_texts=tuple(train_texts), train_labels=tuple(train_labels),
        test_texts=tuple(test_texts), test_labels=tuple(test_labels),
        source=f"{train.path} + {test.path}", train_source=str(train.path), test_source=str(test.path),
    )


def _split_values(records: Records, values: list[str], column: str) -> list[bool]:
    """True for test rows; every value must be train or test."""
    bad = [i for i, v in enumerate(values) if v.lower() not in ("train", "test")]
    if bad:
        found = sorted({values[i] for i in bad})
        raise TextDataError(
            f"{records.at(bad[0])}: column {column!r} must hold 'train' or 'test', found {values[bad[0]]!r} "
            f"({len(bad)} such record(s), values {found[:5]}); relabel or remove them"
        )
    return [v.lower() == "test" for v in values]


def _draw_test(labels: list[str], fraction: float, seed: int) -> list[bool]:
    """A seeded per-label draw: round(fraction * n) test examples per label (>= 1 when n >= 2, < n)."""
    if not 0 < fraction < 1:
        raise TextDataError(f"test_fraction must be in (0, 1), got {fraction}")
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    is_test = [False] * len(labels)
    for label in sorted(by_label):
        idx = by_label[label]
        n = min(len(idx) - 1, max(1, round(fraction * len(idx))))
        for i in rng.sample(idx, n):
            is_test[i] = True
    return is_test
