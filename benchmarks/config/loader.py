"""Suite files (TOML) -> validated run specifications, with every problem reported at once.

Layout of a suite file (see benchmarks/suites/*.toml):

    [suite]                         description, seeds, strategies, device, reference, include, log
    [train]                         TrainConfig defaults for every run
    [hparams.<strategy>]            strategy hyper-parameters for every scenario
    [variants.<name>]               a named variant: strategy = "<registered>", hparams = {...}, train = {...}
    [scenarios.<name>]              scenario = "<registered>" (default: <name>), its params as keys, and
                                    optional strategies, seeds, train = {...}, model = {name = ..., ...},
                                    hparams.<strategy> = {...}, diagnostics = true | {...}
                                    (per-layer diagnostics of a Transformer: benchmarks/diagnostics)
    [tune]                          the tuning protocol and search spaces of ``python -m benchmarks tune``
                                    (benchmarks/tuning/space.py, docs/tuning.md)

A fragment named in ``[suite] include`` (written by ``tune``) holds only [tuned.<scenario>.<strategy>]
tables: hparams = {...}, train = {...} and the record of how they were chosen.

Precedence of hyper-parameters: strategy defaults < per-setting defaults of the registry
< [hparams.X] < [variants.V].hparams < [scenarios.S.hparams.X|V] < an included [tuned.S.X] ; train settings:
[train] < [scenarios.S] train < [variants.V] train < [tuned.S.X] train. ``--set a.b=v`` edits the TOML first
(so ``--set suite.include=[]`` runs without the tuned values). Every run records which layer set each key
(benchmarks/config/sources.py).
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


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's document; ConfigError naming the file when it is not valid TOML."""
    try:
        return tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None


def suite_document(suite: str, overrides: list[str] | None = None, device: str | None = None,
                   log: list[str] | None = None):
    """(path, document with --set overrides, device and log applied) of a suite; ``device`` and ``log``
    (the CLI's --device / --log) replace ``[suite] device`` / ``[suite] log``."""
    path = resolve_suite_path(suite)
    doc = apply_overrides(read_toml(path), overrides or [])
    if device is not None:
        doc.setdefault("suite", {})["device"] = device
    if log is not None:
        doc.setdefault("suite", {})["log"] = log
    return path, doc


def load_suite(suite: str, overrides: list[str] | None = None, device: str | None = None,
               include: bool = True, log: list[str] | None = None) -> list[RunSpec]:
    """Read, override, validate and expand a suite into run specs; raise ConfigError listing all problems.

    Args:
        suite: a suite name or a .toml path.
        overrides: ``--set key=value`` items.
        device: overrides [suite] device.
        include: read the tuned fragments of ``[suite] include`` (``tune`` itself starts without them).
        log: overrides [suite] log (run loggers; None keeps the suite's).
    """
    from benchmarks.config.sources import override_paths

    path, doc = suite_document(suite, overrides, device, log)
    tuned = read_includes(path, doc.get("suite", {}).get("include", [])) if include else {}
    return SuiteExpander(doc, name=path.stem, where=str(path), tuned=tuned,
                         overridden=override_paths(overrides or [])).run()


def read_includes(suite_path: Path, include: Any) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """The [tuned.<scenario>.<strategy>] entries of the included fragments (a later file wins).

    Paths are relative to the suite file's folder. A fragment may hold nothing but [tuned...] tables.
    """
    where = f"{suite_path} [suite] include"
    if not isinstance(include, list) or not all(isinstance(p, str) for p in include):
        raise ConfigError([f"{where}: must be a list of fragment paths, e.g. [\"tuned/text.toml\"]"])
    out: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    errors: list[str] = []
    for item in include:
        frag = Path(item) if Path(item).is_absolute() else suite_path.parent / item
        if not frag.is_file():
            errors.append(f"{where}: {item!r} does not exist ({frag}); write it with `python -m benchmarks tune "
                          f"--suite {suite_path.stem}` or remove it from include")
            continue
        doc = read_toml(frag)
        for key in sorted(set(doc) - {"tuned"}):
            errors.append(f"{frag}: unknown table [{key}]; a tuned fragment holds only [tuned.<scenario>.<strategy>]")
        for sname, table in doc.get("tuned", {}).items():
            for strategy, entry in table.items():
                if not isinstance(entry, dict):
                    errors.append(f"{frag} [tuned.{sname}]: {strategy} must be a table [tuned.{sname}.{strategy}]")
                    continue
                out[(sname, strategy)] = (str(frag), entry)
    if errors:
        raise ConfigError(errors)
    return out


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
    "read_includes",
    "resolve_suite_path",
    "to_dict",
]
