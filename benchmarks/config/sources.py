"""Where each hyper-parameter of a run came from: "default", "hand-set" or "tuned".

A run's strategy parameters and train settings are merged from layers (benchmarks/config/loader.py
gives the order); this module records, per key, the last layer that set it:

- ``default``: the params dataclass's default (``from``: the class, ``doc``: its documented line, which
  names the default's source, e.g. the paper) or a per-setting default of the strategy's registration;
- ``hand-set``: a suite table or a ``--set`` override (``from``: the file and table, or the --set item);
- ``tuned``: a fragment written by ``python -m benchmarks tune`` (``from``: the fragment's path); the
  run's ``tuned`` block then names the protocol, k, trials and validation score.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

#: (source, location path, values): e.g. ("hand-set", ("hparams", "olora"), {"lambda_1": 5.0})
Layer = tuple[str, tuple[str, ...], Mapping[str, Any]]


def documented_default(cls: type, key: str) -> str:
    """The docstring text documenting ``key`` of a params dataclass ("" when there is none).

    Reads both docstring styles of the project: Google-style ``Args:`` lines and one paragraph
    ("Args: a: ...; b, c: ..."); the text runs to the next ``name:``.
    """
    flat = " ".join((cls.__doc__ or "").split())
    names = r"(?:[a-z_][a-z_0-9]*, )*"
    found = re.search(rf"(?<![\w.]){names}{re.escape(key)}(?:, [a-z_][a-z_0-9]*)*: (.+?)"
                      rf"(?=;? {names}[a-z_][a-z_0-9]*: |$)", flat)
    return f"{key}: {found.group(1).rstrip(';')}"[:200] if found else ""


def key_sources(cls: type, layers: Iterable[Layer], *, where: str, overridden: set[tuple[str, ...]]) -> dict:
    """{key: {"source", "from"[, "doc"]}} for every field of ``cls``, the last layer that sets a key winning.

    Args:
        cls: the params dataclass (a strategy's, or TrainConfig).
        layers: in increasing precedence; a location path of () means "the strategy's registration".
        where: the suite file, for messages.
        overridden: the key paths a ``--set`` changed (``("hparams", "olora", "lambda_1")``).
    """
    origin = f"{cls.__module__}.{cls.__qualname__}"
    out: dict[str, dict[str, str]] = {}
    for f in dataclasses.fields(cls):
        doc = documented_default(cls, f.name)
        out[f.name] = {"source": "default", "from": origin, **({"doc": doc} if doc else {})}
    for source, path, values in layers:
        for key in values:
            if key not in out:
                continue
            full = (*path, key)
            if source == "hand-set" and any(full[:n] in overridden for n in range(1, len(full) + 1)):
                out[key] = {"source": source, "from": "--set " + ".".join((*path, key))}
            elif source == "hand-set":
                out[key] = {"source": source, "from": f"{where} [{'.'.join(path)}]"}
            elif source == "default":  # a per-setting default of the registration
                out[key] = {"source": source, "from": f"{origin} registration, per-setting default ({path[0]})"}
            else:
                out[key] = {"source": source, "from": path[0]}
    return out


def override_paths(overrides: Iterable[str]) -> set[tuple[str, ...]]:
    """The key paths of ``--set a.b.c=v`` items (a path also covers the keys of a table it sets)."""
    return {tuple(item.split("=", 1)[0].strip().split(".")) for item in overrides if "=" in item}
