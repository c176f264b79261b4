"""CLINC150 (Larson et al., EMNLP-IJCNLP 2019): 150 intents in 10 domains of 15.

Each intent has 100 train / 20 val / 30 test utterances; the val split and the out-of-scope
("oos_*") utterances are not used. The 10 domains of ``domains.json`` are the 10 experiences.

Files are looked up in the cache (``cache_dir()/clinc150``), then copied from the offline mirror
(``<mirror>/clinc150/``), then downloaded from the raw files of github.com/clinc/oos-eval ``data/``
(the canonical source; the mirror comes first so that offline machines do not wait on a network
timeout). Both copies are checked against the md5s of commit 828f809.
"""

from __future__ import annotations

import json
import warnings
from functools import lru_cache
from pathlib import Path

from benchmarks.data.cache import cache_dir, download_checked, fetch_files
from benchmarks.data.text import Groups, TextSplits

URL = "https://raw.githubusercontent.com/clinc/oos-eval/master/data/{name}"
FILES = (
    ("data_full.json", "30c29dc6ab78edf3b5dfa640be204cde"),
    ("domains.json", "9beee9d0f36e07e914c1e3a626bdcb4a"),
)
MIRROR_SUBDIR = "clinc150"


def _download(name: str, dest: Path, digest: str) -> None:
    """Fetch one raw file of CLINC150 into ``dest`` and check its md5."""
    download_checked(URL.format(name=name), dest, digest, f"CLINC150 {name}")


def fetch(root: Path | None = None) -> Path:
    """The folder holding data_full.json and domains.json (filled from mirror or download)."""
    root = cache_dir() / "clinc150" if root is None else root
    return fetch_files(root, FILES, MIRROR_SUBDIR, "CLINC150", "github.com/clinc/oos-eval, data/",
                       download=_download, check_cached=False)


@lru_cache(maxsize=1)
def load_clinc150() -> tuple[TextSplits, Groups]:
    """CLINC150 train/test utterances (in-scope only) and its 10 domains as label groups.

    Returns:
        splits: 15,000 train and 4,500 test (utterance, intent) pairs.
        domains: 10 groups of 15 intent names, in the order of domains.json.
    """
    root = fetch()
    try:
        data, domains = (json.loads((root / name).read_text()) for name, _ in FILES)
    except ValueError as exc:  # a truncated or corrupted cache copy: fetch it again (md5-checked)
        warnings.warn(f"cached CLINC150 files in {root} are unreadable ({exc}); removed them and fetching them again",
                      stacklevel=2)
        for name, _ in FILES:
            (root / name).unlink(missing_ok=True)
        root = fetch()
        data, domains = (json.loads((root / name).read_text()) for name, _ in FILES)
    train, test = data["train"], data["test"]
    splits = TextSplits(
        train_texts=tuple(t for t, _ in train), train_labels=tuple(label for _, label in train),
        test_texts=tuple(t for t, _ in test), test_labels=tuple(label for _, label in test), source="clinc150",
    )
    return splits, tuple(tuple(intents) for intents in domains.values())
