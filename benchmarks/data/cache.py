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


def save_cached(obj, path: Path) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically (a temporary file in the same folder, then a rename),
    so that a reader, another process or an interrupted run never sees a half-written cache file."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def unavailable(dataset: str, files: str, subdir: str, cache_folder: Path, cause: Exception) -> DataMissingError:
    """The error for a data set found neither in the mirror nor by download: which files go where."""
    return DataMissingError(
        f"{dataset} is not available: no mirror copy and the download failed ({cause}). "
        f"Put {files} into <mirror>/{subdir}/ and set CLBENCH_MIRROR=<mirror>, or copy them into {cache_folder}/"
    )


def download_checked(url: str, dest: Path, digest: str, what: str, timeout: float = 30.0) -> None:
    """Fetch ``url`` into ``dest`` through a temp file and check its md5 (``what`` names it in the error)."""
    import urllib.request

    tmp = dest.with_suffix(dest.suffix + f".{os.getpid()}.part")
    with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as fh:
        fh.write(response.read())
    if md5(tmp) != digest:
        tmp.unlink()
        raise DataMissingError(f"downloaded {what} has md5 != {digest}; the upstream file changed")
    os.replace(tmp, dest)


def fetch_files(root: Path, files, subdir: str, dataset: str, source: str, download, check_cached: bool) -> Path:
    """Fill ``root`` with ``files`` ((name, md5) pairs): the cached copy, else the mirror's ``subdir``, else
    ``download(name, dest, md5)``; the error names every file, where it comes from and where to put it.

    Args:
        check_cached: also md5-check a file already in the cache (refused with the fix when it differs).
    """
    root.mkdir(parents=True, exist_ok=True)
    for name, digest in files:
        dest = root / name
        if dest.is_file():
            if not check_cached or md5(dest) == digest:
                continue
            raise DataMissingError(f"cached {dataset} file {dest} has the wrong checksum (expected md5 {digest}); "
                                   f"delete it so that it is copied again from the mirror or {source}")
        if copy_from_mirror(f"{subdir}/{name}", dest, expected_md5=digest):
            continue
        try:
            download(name, dest, digest)
        except DataMissingError:
            raise
        except Exception as exc:  # network errors come in many types
            names = ", ".join(n for n, _ in files) + f" (from {source})"
            raise unavailable(dataset, names, subdir, root, exc) from exc
    return root
