"""Data loading through the offline mirror: copy into the cache, checksums, clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarks.data import mnist
from benchmarks.data.cache import DataMissingError, mirror_dir

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """An empty cache and an empty mirror; returns (cache, mirror)."""
    cache, mirror = tmp_path / "cache", tmp_path / "mirror"
    (mirror / mnist.MIRROR_SUBDIR).mkdir(parents=True)
    monkeypatch.setenv("CLBENCH_CACHE", str(cache))
    monkeypatch.setenv("CLBENCH_MIRROR", str(mirror))
    mnist.load_mnist.cache_clear()
    yield cache, mirror
    mnist.load_mnist.cache_clear()


def test_wrong_checksum_in_mirror_is_an_error_naming_the_file(fresh):
    _, mirror = fresh
    for name, _ in mnist.MNIST_FILES:
        (mirror / mnist.MIRROR_SUBDIR / name).write_bytes(b"not mnist")
    with pytest.raises(DataMissingError, match="wrong checksum"):
        mnist.load_mnist(True)


def test_missing_data_error_says_which_files_to_put_where(fresh, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(DataMissingError) as info:
        mnist.load_mnist(True)
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz" in msg and "CLBENCH_MIRROR" in msg and "mnist/MNIST/raw" in msg


def test_mirror_that_is_not_a_folder_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("CLBENCH_MIRROR", str(tmp_path / "nope"))
    with pytest.raises(DataMissingError, match="not a folder"):
        mirror_dir()


@pytest.mark.integration
@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="no MNIST mirror next to the repository")
def test_mnist_loads_from_a_mirror_without_writing_into_it(fresh):
    cache, mirror = fresh
    for name, _ in mnist.MNIST_FILES:
        shutil.copy(SHARED / mnist.MIRROR_SUBDIR / name, mirror / mnist.MIRROR_SUBDIR / name)
    before = sorted(p.name for p in (mirror / mnist.MIRROR_SUBDIR).iterdir())
    x, y = mnist.load_mnist(False)
    assert tuple(x.shape) == (10000, 28, 28) and int(y[0]) == 7
    assert sorted(p.name for p in (mirror / mnist.MIRROR_SUBDIR).iterdir()) == before
    assert (cache / "mnist" / "mnist_test.pt").is_file()
