"""Render a Document as GitHub-flavoured Markdown (index.md)."""

from __future__ import annotations

from reports.document import Block, BulletList, Document, Figure, Heading, Paragraph, Table

__all__ = ["render_markdown"]

_PREFIX = {"warning": "> **Warning:** ", "note": "> "}


def _table(t: Table) -> str:
    """A pipe table, preceded by its caption."""
    align = t.align or ("l",) * len(t.header)
    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = [f"**{t.caption}**", ""] if t.caption else []
    for cells in (t.header, rule, *t.rows):
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _figure(f: Figure) -> str:
    """Image, then the caption with a link to the vector (SVG) version."""
    return f"![{f.alt}]({f.png.as_posix()})\n\n{f.caption} ([SVG]({f.svg.as_posix()}))"


def _block(block: Block) -> str:
    """One block as Markdown text."""
    if isinstance(block, Heading):
        return "#" * block.level + " " + block.text
    if isinstance(block, Paragraph):
        return _PREFIX.get(block.kind, "") + block.text
    if isinstance(block, BulletList):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return _figure(block)
    raise TypeError(f"unknown block {block!r}")


def render_markdown(doc: Document) -> str:
    """The whole document; blocks separated by blank lines."""
    return "\n\n".join([f"# {doc.title}", *(_block(b) for b in doc.blocks)]) + "\n"
