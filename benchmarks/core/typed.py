"""Build frozen dataclasses from TOML tables with strict checking (unknown keys, types, values).

Errors are collected, not raised one at a time, so a user sees every problem of a suite file at once.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin


class ConfigError(ValueError):
    """One or more problems in a configuration; ``problems`` lists each with where and the fix."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(self.problems))


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin is tuple:
        return f"list of {_type_name(get_args(tp)[0])}"
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any) -> Any:
    """Return ``value`` converted to type ``tp`` or raise TypeError; ints widen to float only."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise TypeError(f"must be one of {_type_name(tp)}, got {value!r}")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in get_args(tp):
            return None
        for arg in get_args(tp):
            if arg is type(None):
                continue
            try:
                return coerce(value, arg)
            except TypeError:
                continue
        raise TypeError(f"must be {_type_name(tp)}, got {type(value).__name__} {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"must be a list, got {type(value).__name__} {value!r}")
        (item,) = get_args(tp)[:1]
        return tuple(coerce(v, item) for v in value)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp in (bool, str):
        if isinstance(value, tp):
            return value
    else:  # pragma: no cover - only the types above are used in params
        raise TypeError(f"unsupported parameter type {tp}")
    raise TypeError(f"must be {_type_name(tp)}, got {type(value).__name__} {value!r}")


def build(cls: type, data: Mapping[str, Any], where: str, errors: list[str]) -> Any:
    """Instantiate dataclass ``cls`` from ``data``; append problems to ``errors``, return None on any.

    Args:
        cls: frozen dataclass whose fields (with defaults) define the allowed keys and types.
        data: the user's values (from TOML or --set).
        where: location for messages, e.g. "suites/default.toml [hparams.ewc]".
        errors: list collecting every problem found.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    n_before = len(errors)
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(key, sorted(fields), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(sorted(fields)) or '(none)'}"
            errors.append(f"{where}: unknown key {key!r}{hint}")
            continue
        try:
            kwargs[key] = coerce(value, hints[key])
        except TypeError as exc:
            errors.append(f"{where}: {key} {exc}")
    if len(errors) > n_before:
        return None
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        errors.append(f"{where}: {exc}")
        return None


def check(condition: bool, message: str) -> None:
    """Raise ValueError(message) unless condition; for use in dataclass ``__post_init__``."""
    if not condition:
        raise ValueError(message)


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as a JSON-friendly dict (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        return v

    return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
