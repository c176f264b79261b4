"""A tiny registry: adding a scenario, model or strategy is one file plus one decorator."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Entry:
    """One registered component: its builder, its typed parameters and free-form metadata."""

    name: str
    builder: Callable[..., Any]
    params: type  # frozen dataclass holding the component's defaults
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def doc(self) -> str:
        """First line of the builder's (or params') docstring."""
        text = self.builder.__doc__ or self.params.__doc__ or ""
        return text.strip().splitlines()[0] if text.strip() else ""


class Registry(Generic[F]):
    """Name -> Entry. Names are snake_case (``+`` joins composed strategies); duplicates are errors."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, *, params: type, **meta: Any) -> Callable[[F], F]:
        """Decorator registering ``builder`` under ``name`` with its params dataclass."""
        if not name or name != name.lower() or " " in name:
            raise ValueError(f"{self.kind} name {name!r} must be lower snake_case")

        def deco(builder: F) -> F:
            if name in self._entries:
                raise ValueError(f"duplicate {self.kind} name {name!r}")
            self._entries[name] = Entry(name, builder, params, dict(meta))
            return builder

        return deco

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        """Sorted registered names."""
        return sorted(self._entries)

    def suggest(self, name: str) -> str:
        """' (did you mean X?)' for the closest registered name, or ''."""
        close = difflib.get_close_matches(name, self.names(), n=1, cutoff=0.5)
        return f" (did you mean {close[0]!r}?)" if close else ""

    def get(self, name: str) -> Entry:
        """The entry for ``name``; a KeyError that lists the valid names otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.kind} {name!r}{self.suggest(name)}; known: {', '.join(self.names())}"
            ) from None
