"""A tiny document model rendered both to Markdown (index.md) and HTML (index.html).

Text may use two inline marks, ``**bold**`` and ```code```, plus CommonMark backslash escapes;
renderers translate them. Text from results files (error messages, names) goes through ``plain`` or
``code`` so that it can never be read as markup (or as raw HTML by a Markdown viewer).
Building the report once as blocks keeps the two outputs identical in content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Block",
    "BulletList",
    "Document",
    "Figure",
    "Heading",
    "Paragraph",
    "Table",
    "code",
    "plain",
    "slug",
]


@dataclass(frozen=True)
class Heading:
    """Section heading; ``level`` 1 is the title. ``anchor`` is the HTML id."""

    level: int
    text: str
    anchor: str = ""


@dataclass(frozen=True)
class Paragraph:
    """A paragraph; ``kind`` "note" or "warning" is rendered as a highlighted box in HTML."""

    text: str
    kind: str = "text"


@dataclass(frozen=True)
class BulletList:
    """A bulleted list of inline-marked strings."""

    items: tuple[str, ...]
    kind: str = "text"


@dataclass(frozen=True)
class Table:
    """A table of inline-marked cells; ``align`` holds "l" or "r" per column."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    align: tuple[str, ...] = ()
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    """A figure: PNG and SVG paths relative to the report folder, with caption and alt text."""

    png: Path
    svg: Path
    caption: str
    alt: str


Block = Heading | Paragraph | BulletList | Table | Figure


@dataclass
class Document:
    """The report: a title and a flat list of blocks."""

    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        """Append blocks in order."""
        self.blocks.extend(blocks)


def slug(text: str) -> str:
    """An HTML id from a heading text."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


_ESCAPED = re.compile(r"([\\`*_<>\[\]|#~])")


def plain(text: object) -> str:
    """Literal text: markup characters backslash-escaped, line breaks folded into spaces."""
    flat = " ".join(str(text).split())
    return _ESCAPED.sub(r"\\\1", flat)


def code(text: object) -> str:
    """Literal text as an inline code span.

    Backticks cannot be escaped in a code span and become quotes; a pipe is written ``\\|`` because
    GitHub tables split cells on it even inside code (the HTML renderer undoes that).
    """
    flat = " ".join(str(text).replace("`", "'").split())
    return "`" + flat.replace("|", "\\|") + "`"
