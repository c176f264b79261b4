"""Render a Document as one self-contained HTML page (index.html).

Figures are embedded as base64 PNG data URIs and the style sheet is inline: the page opens
offline, from anywhere, with no CDN and no external requests.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from reports.document import Block, BulletList, Document, Figure, Heading, Paragraph, Table, slug

__all__ = ["inline_html", "render_html"]

_TOKEN = re.compile(r"\\([!-/:-@\[-`{-~])|`([^`]*)`|\*\*(.+?)\*\*")

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 color:#1a1a1a;max-width:1180px;margin:2rem auto;padding:0 1.5rem;line-height:1.5}
h1{font-size:1.9rem;border-bottom:2px solid #333;padding-bottom:.3rem}
h2{font-size:1.45rem;margin-top:2.6rem;border-bottom:1px solid #bbb;padding-bottom:.2rem}
h3{font-size:1.15rem;margin-top:1.8rem}
div.table{overflow-x:auto;margin:.6rem 0 1.2rem}
table{border-collapse:collapse;font-size:.92rem}
p.caption{font-weight:600;margin:.4rem 0}
td:last-child code{overflow-wrap:anywhere}
th,td{padding:.3rem .7rem;border-bottom:1px solid #ddd;vertical-align:top}
thead th{border-bottom:2px solid #333;background:#f4f4f4}
th.l,td.l{text-align:left}
td.r,th.r{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tbody tr:nth-child(even){background:#fafafa}
code{background:#f1f1f1;padding:0 .25rem;border-radius:3px;font-size:.9em}
figure{margin:1.2rem 0 2rem}
figure img{max-width:100%;height:auto;border:1px solid #e3e3e3}
figcaption{font-size:.92rem;color:#333;max-width:980px}
.warning{background:#fff4e5;border-left:5px solid #d55e00;padding:.5rem .9rem}
.note{background:#eef5fb;border-left:5px solid #0072b2;padding:.5rem .9rem}
ul.warning,ul.note{padding-left:2.2rem}
nav ul{columns:2;font-size:.95rem}
"""


def inline_html(text: str) -> str:
    """HTML for inline-marked text (``**bold**``, ```code```, backslash escapes)."""
    out, pos = [], 0
    for m in _TOKEN.finditer(text):
        out.append(html.escape(text[pos : m.start()]))
        if m.group(1) is not None:
            out.append(html.escape(m.group(1)))
        elif m.group(2) is not None:
            out.append(f"<code>{html.escape(m.group(2).replace(chr(92) + '|', '|'))}</code>")
        else:
            out.append(f"<strong>{inline_html(m.group(3))}</strong>")
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _table(t: Table) -> str:
    """An HTML table; right-aligned columns get class "r"."""
    align = t.align or ("l",) * len(t.header)

    def row(cells: tuple[str, ...], tag: str) -> str:
        return "<tr>" + "".join(f'<{tag} class="{a}">{inline_html(c)}</{tag}>' for c, a in zip(cells, align)) + "</tr>"

    caption = f'<p class="caption">{inline_html(t.caption)}</p>' if t.caption else ""
    body = "\n".join(row(r, "td") for r in t.rows)
    return (
        f'<div class="table">{caption}<table><thead>{row(t.header, "th")}</thead>\n'
        f"<tbody>\n{body}\n</tbody></table></div>"
    )


def _figure(f: Figure, root: Path) -> str:
    """A figure with its PNG embedded as a data URI."""
    data = base64.b64encode((root / f.png).read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(f.alt)}">'
        f"<figcaption>{inline_html(f.caption)}</figcaption></figure>"
    )


def _block(block: Block, root: Path) -> str:
    """One block as HTML."""
    if isinstance(block, Heading):
        anchor = block.anchor or slug(block.text)
        return f'<h{block.level} id="{anchor}">{inline_html(block.text)}</h{block.level}>'
    if isinstance(block, Paragraph):
        prefix = "<strong>Warning:</strong> " if block.kind == "warning" else ""
        return f'<p class="{block.kind}">{prefix}{inline_html(block.text)}</p>'
    if isinstance(block, BulletList):
        items = "".join(f"<li>{inline_html(i)}</li>" for i in block.items)
        return f'<ul class="{block.kind}">{items}</ul>'
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return _figure(block, root)
    raise TypeError(f"unknown block {block!r}")


def _toc(doc: Document) -> str:
    """Links to the level-2 sections."""
    items = [
        f'<li><a href="#{b.anchor or slug(b.text)}">{inline_html(b.text)}</a></li>'
        for b in doc.blocks
        if isinstance(b, Heading) and b.level == 2
    ]
    return f"<nav><strong>Contents</strong><ul>{''.join(items)}</ul></nav>" if items else ""


def render_html(doc: Document, root: Path) -> str:
    """The whole page; ``root`` is the report folder the figure paths are relative to."""
    body = "\n".join(_block(b, Path(root)) for b in doc.blocks)
    title = inline_html(doc.title)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(re.sub(r'[`*]', '', doc.title))}</title><style>{CSS}</style></head>\n"
        f"<body>\n<h1>{title}</h1>\n{_toc(doc)}\n{body}\n</body></html>\n"
    )
