"""Bring your own text data: a CSV or JSON-lines file of (text, label[, split]) records.

- ``.csv``: a header row names the columns (csv.DictReader; quoting as in RFC 4180).
- ``.jsonl`` / ``.ndjson``: one JSON object per line; blank lines are skipped.

Columns are configurable. When the file has a split column its values must be ``train`` or
``test``; without one, a seeded, per-label ``test_fraction`` of the examples becomes the test split
(fixed ``split_seed``, so every run of a suite is evaluated on the same examples).
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from benchmarks.data.cache import DataMissingError
from benchmarks.data.text import TextDataError, TextSplits

CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")


def read_records(path: Path) -> list[dict]:
    """Rows of a CSV or JSON-lines file as dicts (column -> value)."""
    if not path.is_file():
        raise DataMissingError(f"text data file {path} does not exist (relative paths start at {Path.cwd()})")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    if suffix in JSONL_SUFFIXES:
        return _read_jsonl(path)
    raise TextDataError(f"{path}: unknown format {suffix!r}; use .csv or .jsonl (one JSON object per line)")


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TextDataError(f"{path}:{n}: not valid JSON ({exc})") from None
            if not isinstance(row, dict):
                raise TextDataError(f"{path}:{n}: expected a JSON object per line, got {type(row).__name__}")
            rows.append(row)
    return rows


def _column(rows: list[dict], name: str, path: Path, what: str) -> list[str]:
    """Values of column ``name`` as stripped strings; errors for a missing column or an empty value."""
    if not rows:
        raise TextDataError(f"{path}: the file holds no records")
    missing = [i for i, row in enumerate(rows) if name not in row]
    if missing:
        columns = sorted(rows[missing[0]])
        raise TextDataError(
            f"{path}: no {what} column {name!r} (record {missing[0] + 1}); columns: {', '.join(columns)}. "
            f"Set {what}_column in the scenario"
        )
    values = ["" if row[name] is None else str(row[name]).strip() for row in rows]
    empty = [i + 1 for i, v in enumerate(values) if not v]
    if empty:
        raise TextDataError(f"{path}: empty {what} in record(s) {empty[:10]} (column {name!r}); fill or remove them")
    return values


def load_text_file(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    split_column: str = "split",
    test_fraction: float = 0.2,
    split_seed: int = 0,
) -> TextSplits:
    """Read a user's labelled utterances and split them into train and test.

    Args:
        path: the .csv or .jsonl file.
        text_column: column holding the utterance.
        label_column: column holding the label (any string).
        split_column: column holding "train"/"test"; when the file has no such column the split is drawn.
        test_fraction: fraction of each label's examples drawn for test when there is no split column.
        split_seed: seed of that draw.
    """
    path = Path(path).expanduser()
    rows = read_records(path)
    texts = _column(rows, text_column, path, "text")
    labels = _column(rows, label_column, path, "label")
    if split_column in rows[0]:
        is_test = _split_values(_column(rows, split_column, path, "split"), path, split_column)
    else:
        is_test = _draw_test(labels, test_fraction, split_seed)
    train = [i for i in range(len(rows)) if not is_test[i]]
    test = [i for i in range(len(rows)) if is_test[i]]
    return TextSplits(
        train_texts=tuple(texts[i] for i in train), train_labels=tuple(labels[i] for i in train),
        test_texts=tuple(texts[i] for i in test), test_labels=tuple(labels[i] for i in test), source=str(path),
    )


def _split_values(values: list[str], path: Path, column: str) -> list[bool]:
    """True for test rows; every value must be train or test."""
    bad = sorted({v for v in values if v.lower() not in ("train", "test")})
    if bad:
        raise TextDataError(f"{path}: column {column!r} must hold 'train' or 'test', found {bad[:5]}")
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
