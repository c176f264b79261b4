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
import os
import urllib.request
from functools import lru_cache
from pathlib import Path

from benchmarks.data.cache import DataMissingError, cache_dir, copy_from_mirror, md5, unavailable
from benchmarks.data.text import TextDataError, TextSplits

URL = "https://raw.githubusercontent.com/PolyAI-LDN/task-specific-datasets/master/banking_data/{name}"
FILES = (
    ("train.csv", "cec64185f4197906aabce0781ef9a19b"),
    ("test.csv", "8dcd9dc31b686c75ec1f24bf23c140cb"),
    ("categories.json", "8312ff01430af97fba5a113b7a490269"),
)
MIRROR_SUBDIR = "banking77"
SOURCE = "github.com/PolyAI-LDN/task-specific-datasets, banking_data/"


def _download(name: str, dest: Path, digest: str, timeout: float = 30.0) -> None:
    """Fetch one raw file of PolyAI's banking_data/ into ``dest`` and check its md5."""
    tmp = dest.with_suffix(dest.suffix + f".{os.getpid()}.part")
    with urllib.request.urlopen(URL.format(name=name), timeout=timeout) as response, open(tmp, "wb") as fh:
        fh.write(response.read())
    if md5(tmp) != digest:
        tmp.unlink()
        raise DataMissingError(f"downloaded BANKING77 {name} has md5 != {digest}; the upstream file changed")
    os.replace(tmp, dest)


def fetch(root: Path | None = None) -> Path:
    """The folder holding train.csv, test.csv and categories.json (filled from mirror or download)."""
    root = cache_dir() / "banking77" if root is None else root
    root.mkdir(parents=True, exist_ok=True)
    for name, digest in FILES:
        dest = root / name
        if dest.is_file():
            if md5(dest) == digest:
                continue
            raise DataMissingError(f"cached BANKING77 file {dest} has the wrong checksum (expected md5 {digest}); "
                                   f"delete it so that it is copied again from the mirror or {SOURCE}")
        if copy_from_mirror(f"{MIRROR_SUBDIR}/{name}", dest, expected_md5=digest):
            continue
        try:
            _download(name, dest, digest)
        except DataMissingError:
            raise
        except Exception as exc:  # network errors come in many types
            names = ", ".join(n for n, _ in FILES) + f" (from {SOURCE})"
            raise unavailable("BANKING77", names, MIRROR_SUBDIR, root, exc) from exc
    return root


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
