"""Suite files (TOML) -> validated run specifications, with every problem reported at once.

Layout of a suite file (see benchmarks/suites/*.toml):

    [suite]                         description, seeds, strategies, device, reference, log
    [train]                         TrainConfig defaults for every run
    [hparams.<strategy>]            strategy hyper-parameters for every scenario
    [variants.<name>]               a named variant: strategy = "<registered>", hparams = {...}, train = {...}
    [scenarios.<name>]              scenario = "<registered>" (default: <name>), its params as keys, and
                                    optional strategies, seeds, train = {...}, model = {name = ..., ...},
                                    hparams.<strategy> = {...}, diagnostics = true | {...}
                                    (per-layer diagnostics of a Transformer: benchmarks/diagnostics)

Precedence of hyper-parameters: strategy defaults < per-setting defaults of the registry
< [hparams.X] < [variants.V].hparams < [scenarios.S.hparams.X|V] ; ``--set a.b=v`` edits the TOML first.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomllib

from benchmarks.config.expand import SuiteExpander
from benchmarks.config.spec import RunSpec, SuiteMeta
from benchmarks.core.typed import ConfigError, build, coerce, to_dict

SUITES_DIR = Path(__file__).parent.parent / "suites"
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


def load_suite(
    suite: str, overrides: list[str] | None = None, device: str | None = None, log: list[str] | None = None,
) -> list[RunSpec]:
    """Read, override, validate and expand a suite into run specs; raise ConfigError listing all problems.

    ``device`` and ``log`` (the CLI's --device / --log) replace ``[suite] device`` / ``[suite] log``.
    """
    path = resolve_suite_path(suite)
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    doc = apply_overrides(doc, overrides or [])
    if device is not None:
        doc.setdefault("suite", {})["device"] = device
    if log is not None:
        doc.setdefault("suite", {})["log"] = log
    return expand(doc, name=path.stem, where=str(path))


def expand(doc: Mapping[str, Any], *, name: str, where: str) -> list[RunSpec]:
    """Validate a parsed suite document and expand it into run specs (scenarios x strategies x seeds)."""
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
