"""Suite files (TOML) -> validated run specifications, with every problem reported at once.

Layout of a suite file (see benchmarks/suites/*.toml):

    [suite]                         description, seeds, strategies, device, reference
    [train]                         TrainConfig defaults for every run
    [hparams.<strategy>]            strategy hyper-parameters for every scenario
    [variants.<name>]               a named variant: strategy = "<registered>", hparams = {...}, train = {...}
    [scenarios.<name>]              scenario = "<registered>" (default: <name>), its params as keys, and
                                    optional strategies, seeds, train = {...}, model = {name = ..., ...},
                                    hparams.<strategy> = {...}

Precedence of hyper-parameters: strategy defaults < per-setting defaults of the registry
< [hparams.X] < [variants.V].hparams < [scenarios.S.hparams.X|V] ; ``--set a.b=v`` edits the TOML first.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from benchmarks.typed import ConfigError, build, coerce, to_dict

SUITES_DIR = Path(__file__).parent / "suites"
_SCENARIO_RESERVED = {"scenario", "strategies", "seeds", "train", "model", "hparams"}


@dataclass(frozen=True)
class SuiteMeta:
    """The [suite] table.

    Args:
        description: one paragraph shown in the report.
        seeds: seeds every scenario runs (unless it sets its own).
        strategies: strategies or variants every scenario runs (unless it sets its own).
        device: "auto" (CUDA when present), "cpu" or "cuda".
        reference: published table the report compares with (e.g. "hsu2018"), or "".
        budget_minutes: expected wall time on 2 CPU cores (informational, shown by the runner).
    """

    description: str = ""
    seeds: tuple[int, ...] = (0,)
    strategies: tuple[str, ...] = ()
    device: str = "auto"
    reference: str = ""
    budget_minutes: float = 0.0

    def __post_init__(self) -> None:
        from benchmarks.typed import check

        check(self.device in ("auto", "cpu", "cuda"), "device must be 'auto', 'cpu' or 'cuda'")
        check(len(self.seeds) > 0, "seeds must list at least one seed")


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run; its hash is the run id (resume key)."""

    suite: str
    scenario: str  # name in the suite (display/alias)
    scenario_entry: str  # registered scenario
    setting: str
    strategy: str  # name in the suite (variant or registered)
    strategy_entry: str  # registered strategy
    seed: int
    device: str
    reference: str
    scenario_params: dict[str, Any] = field(hash=False)
    model: dict[str, Any] = field(hash=False)  # {"name": ..., **params}
    strategy_params: dict[str, Any] = field(hash=False)
    train: dict[str, Any] = field(hash=False)

    def config(self) -> dict[str, Any]:
        """The resolved config as written into the results file."""
        return {
            "scenario": {"name": self.scenario, "registered": self.scenario_entry, **self.scenario_params},
            "model": dict(self.model),
            "strategy": {"name": self.strategy, "registered": self.strategy_entry, **self.strategy_params},
            "train": dict(self.train),
            "seed": self.seed,
            "device": self.device,
        }

    @property
    def run_id(self) -> str:
        """Stable hash of the resolved config (same config -> same id -> skipped on rerun)."""
        blob = json.dumps(self.config(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def resolve_suite_path(suite: str) -> Path:
    """A suite name (``quick``) or a path to a TOML file."""
    path = Path(suite)
    if path.suffix == ".toml":
        if not path.is_file():
            raise ConfigError([f"suite file {path} does not exist"])
        return path
    candidate = SUITES_DIR / f"{suite}.toml"
    if not candidate.is_file():
        known = sorted(p.stem for p in SUITES_DIR.glob("*.toml"))
        raise ConfigError([f"unknown suite {suite!r}; known suites: {', '.join(known)} (or give a .toml path)"])
    return candidate


def parse_override(item: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a","b","c"], value); the value is parsed as TOML, else kept as a string."""
    if "=" not in item:
        raise ConfigError([f"--set {item!r}: expected key=value, e.g. --set train.epochs=2"])
    key, raw = item.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(doc: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of the TOML document with ``--set`` overrides applied (tables created as needed)."""
    doc = copy.deepcopy(doc)
    for item in overrides:
        path, value = parse_override(item)
        node = doc
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError([f"--set {item!r}: {part!r} is not a table"])
        node[path[-1]] = value
    return doc


def load_suite(suite: str, overrides: list[str] | None = None, device: str | None = None) -> list[RunSpec]:
    """Read, override, validate and expand a suite into run specs; raise ConfigError listing all problems."""
    path = resolve_suite_path(suite)
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    doc = apply_overrides(doc, overrides or [])
    if device is not None:
        doc.setdefault("suite", {})["device"] = device
    return expand(doc, name=path.stem, where=str(path))


def expand(doc: Mapping[str, Any], *, name: str, where: str) -> list[RunSpec]:
    """Validate a parsed suite document and expand it into run specs (scenarios x strategies x seeds)."""
    from benchmarks.expand import SuiteExpander

    return SuiteExpander(doc, name=name, where=where).run()


__all__ = [
    "ConfigError",
    "RunSpec",
    "SuiteMeta",
    "apply_overrides",
    "build",
    "coerce",
    "expand",
    "load_suite",
    "parse_override",
    "resolve_suite_path",
    "to_dict",
]
