"""Where data lives: an ignored cache folder, filled from an offline mirror or by download.

- Cache: ``$CLBENCH_CACHE`` or ``<repo>/.cache/clbench`` (ignored by git). Everything is written here.
- Mirror: ``$CLBENCH_MIRROR`` (a folder holding the canonical files, e.g. ``mnist/MNIST/raw/*.gz`` and
  ``clinc150/data_full.json``); when unset, ``../shared/data`` next to the repo is used if it exists.
  The mirror is only ever read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


class DataMissingError(FileNotFoundError):
    """A data set is neither in the cache, nor in the mirror, nor downloadable; says what to put where."""


def cache_dir() -> Path:
    """Root of the writable data cache."""
    root = Path(os.environ.get("CLBENCH_CACHE", REPO_ROOT / ".cache" / "clbench"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def mirror_dir() -> Path | None:
    """Root of the read-only offline mirror, or None when there is none."""
    env = os.environ.get("CLBENCH_MIRROR")
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataMissingError(f"CLBENCH_MIRROR={env} is not a folder; unset it or point it at a mirror")
        return path
    default = REPO_ROOT.parent / "shared" / "data"
    return default if default.is_dir() else None


def md5(path: Path) -> str:
    """MD5 hex digest of a file (the checksums torchvision and data sets publish)."""
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def copy_from_mirror(relative: str, dest: Path, expected_md5: str | None = None) -> bool:
    """Copy ``mirror/relative`` to ``dest`` (never writing into the mirror); False if not mirrored.

    Raises DataMissingError when the mirrored file's checksum is wrong.
    """
    mirror = mirror_dir()
    if mirror is None or not (mirror / relative).is_file():
        return False
    src = mirror / relative
    if expected_md5 is not None and md5(src) != expected_md5:
        raise DataMissingError(
            f"mirror file {src} has the wrong checksum (expected md5 {expected_md5}); "
            "replace it with the canonical file"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    return True


def load_cached(path: Path, what: str):
    """``torch.load`` a cache file; None when it is unreadable (truncated, corrupted): the file is removed
    with a warning naming it, and the caller rebuilds it from its source."""
    import torch

    try:
        return torch.load(path)
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001  truncated zip, bad pickle, wrong magic...: all mean "rebuild"
        warnings.warn(f"cache file {path} ({what}) is unreadable ({type(exc).__name__}: {exc}); "
                      "removed it and rebuilding it from its source", stacklevel=2)
        path.unlink(missing_ok=True)
        return None


def unavailable(dataset: str, files: str, subdir: str, cache_folder: Path, cause: Exception) -> DataMissingError:
    """The error for a data set found neither in the mirror nor by download: which files go where."""
    return DataMissingError(
        f"{dataset} is not available: no mirror copy and the download failed ({cause}). "
        f"Put {files} into <mirror>/{subdir}/ and set CLBENCH_MIRROR=<mirror>, or copy them into {cache_folder}/"
    )
