"""MNIST as uint8 tensors, from the cache, filled from the offline mirror or by torchvision's download."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from benchmarks.data.cache import cache_dir, copy_from_mirror, load_cached, save_cached, unavailable

# (file name, md5 of the .gz) as torchvision pins them.
MNIST_FILES = (
    ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
)
MIRROR_SUBDIR = "mnist/MNIST/raw"


def _fill_raw(raw: Path) -> None:
    """Put the four .gz files in ``raw``: from the mirror, else by download, else a clear error."""
    missing = [(n, m) for n, m in MNIST_FILES if not (raw / n).is_file() and not (raw / n[:-3]).is_file()]
    for name, digest in missing:
        copy_from_mirror(f"{MIRROR_SUBDIR}/{name}", raw / name, expected_md5=digest)
    if all((raw / n).is_file() or (raw / n[:-3]).is_file() for n, _ in MNIST_FILES):
        return
    try:
        from torchvision.datasets import MNIST

        MNIST(root=str(raw.parents[1]), train=True, download=True)
    except Exception as exc:  # network errors come in many types
        raise unavailable("MNIST", ", ".join(n for n, _ in MNIST_FILES), MIRROR_SUBDIR, raw, exc) from exc


@lru_cache(maxsize=2)
def load_mnist(train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST images (N, 28, 28) uint8 and labels (N,) int64 for the train or test split."""
    root = cache_dir() / "mnist"
    tensors = root / f"mnist_{'train' if train else 'test'}.pt"
    cached = load_cached(tensors, "MNIST tensors") if tensors.is_file() else None  # corrupted: rebuilt below
    if cached is not None:
        x, y = cached
        return x, y
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    _fill_raw(raw)
    from torchvision.datasets import MNIST

    # download=True only verifies md5s and extracts the .gz files already in the cache.
    ds = MNIST(root=str(root), train=train, download=True)
    x, y = ds.data.contiguous(), ds.targets.long().contiguous()
    save_cached((x, y), tensors)
    return x, y
