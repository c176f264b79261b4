"""BANKING77 (Casanueva et al., NLP4ConvAI 2020): 13,083 online-banking queries in 77 intents.

10,003 train / 3,080 test utterances (``train.csv``, ``test.csv``: columns text, category) and the 77
intent names (``categories.json``), CC BY 4.0. It has no grouping of its own: a scenario groups the
intents explicitly (the literature protocols in benchmarks/scenarios/protocols/, or ``groups`` /
``n_experiences``).

Files are looked up in the cache (``cache_dir()/banking77``), then copied from the offline mirror
(``<mirror>/banking77/``), then downloaded from the raw files of github.com/PolyAI-LDN/task-specific-datasets
``banking_data/`` (the canonical source). Both copies are checked against the md5s below (the files
as that repository serves them, CRLF line ends; shaoyijia/VAG ships the same rows with LF line ends,
which have other md5s and are refused: convert them or take PolyAI's files).
"""

from __future__ import annotations

import csv
import io
import json
from functools import lru_cache
from pathlib import Path

from benchmarks.data.cache import cache_dir, download_checked, fetch_files
from benchmarks.data.text import TextDataError, TextSplits

URL = "https://raw.githubusercontent.com/PolyAI-LDN/task-specific-datasets/master/banking_data/{name}"
FILES = (
    ("train.csv", "cec64185f4197906aabce0781ef9a19b"),
    ("test.csv", "8dcd9dc31b686c75ec1f24bf23c140cb"),
    ("categories.json", "8312ff01430af97fba5a113b7a490269"),
)
MIRROR_SUBDIR = "banking77"
SOURCE = "github.com/PolyAI-LDN/task-specific-datasets, banking_data/"


def _download(name: str, dest: Path, digest: str) -> None:
    """Fetch one raw file of BANKING77 into ``dest`` and check its md5."""
    download_checked(URL.format(name=name), dest, digest, f"BANKING77 {name}")


def fetch(root: Path | None = None) -> Path:
    """The folder holding train.csv, test.csv and categories.json (filled from mirror or download)."""
    root = cache_dir() / "banking77" if root is None else root
    return fetch_files(root, FILES, MIRROR_SUBDIR, "BANKING77", SOURCE, download=_download, check_cached=True)


def _rows(path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(texts, categories) of one CSV split (header text,category)."""
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(io.StringIO(fh.read()))
        if reader.fieldnames != ["text", "category"]:
            raise TextDataError(f"{path}: expected the columns text,category, found {reader.fieldnames}")
        rows = [(r["text"], r["category"]) for r in reader]
    return tuple(t for t, _ in rows), tuple(c for _, c in rows)


@lru_cache(maxsize=1)
def load_banking77() -> tuple[TextSplits, tuple[str, ...]]:
    """BANKING77 train/test utterances and the 77 intent names in categories.json order.

    Returns:
        splits: 10,003 train and 3,080 test (utterance, intent) pairs.
        categories: the 77 intent names, in the order of categories.json.
    """
    root = fetch()
    train_texts, train_labels = _rows(root / "train.csv")
    test_texts, test_labels = _rows(root / "test.csv")
    categories = tuple(json.loads((root / "categories.json").read_text(encoding="utf-8")))
    splits = TextSplits(train_texts=train_texts, train_labels=train_labels, test_texts=test_texts,
                        test_labels=test_labels, source="banking77")
    return splits, categories
