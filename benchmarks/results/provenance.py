"""How a run was made: git commit, package versions, device, host and times."""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
import time
from functools import lru_cache
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("clbench", "avalanche-lib", "torch", "torchvision", "numpy", "transformers", "quadprog", "ray")


@lru_cache(maxsize=1)
def git_state() -> tuple[str, bool]:
    """(commit hash, dirty?) of the repo, or ("unknown", False) outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
        return commit, bool(dirty)
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Installed versions of the packages that determine results (absent ones omitted)."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def device_name(device: str) -> str:
    """Human-readable device, e.g. 'NVIDIA H100 80GB HBM3' or the CPU model."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine()


def provenance(device: str, started: float) -> dict:
    """The provenance block of a results file."""
    import torch

    commit, dirty = git_state()
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": device,
        "device_name": device_name(device),
        "torch_threads": torch.get_num_threads(),
        "hostname": socket.gethostname(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv),
    }
