"""Read a user's CSV or JSON-lines file into records that remember their line, with clear errors.

- ``.csv``: a header row names the columns (RFC 4180 quoting; blank lines skipped). Every row must
  have as many fields as the header: an unquoted comma inside a text is the usual cause otherwise.
- ``.jsonl`` / ``.ndjson``: one JSON object per line; blank lines are skipped.

The file is decoded with ``encoding`` (default UTF-8; a UTF-8 byte-order mark is dropped). A byte that
does not decode is reported with its line and the fix, never as a bare ``UnicodeDecodeError``.

Control characters: a data file holds text, so a NUL byte or another control character (Unicode
category Cc: U+0000-U+001F, U+007F-U+009F) is refused with its line and column: it comes from a binary
or corrupted file (a spreadsheet's .xlsx renamed .csv, a truncated download), a UTF-16 file read as
UTF-8, or a Windows file read as latin-1 (U+0080-U+009F). Allowed: tab, and line breaks (LF, CR, CRLF),
also inside a quoted CSV field or as ``\t`` / ``\n`` escapes in a JSON string; the tokenizer treats them
as spaces. In JSON lines the decoded values are checked too (an escaped ``\u0000`` is refused as well).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from benchmarks.data.cache import DataMissingError
from benchmarks.data.text import TextDataError

CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")
_ENCODINGS_HINT = "'utf-8', 'latin-1', 'cp1252' or 'utf-16'"


@dataclass(frozen=True)
class Records:
    """The records of one file.

    Attributes:
        path: the file.
        rows: one dict (column -> value) per record.
        lines: the line each record starts on (1-based), for messages.
        columns: the CSV header, or every key of the JSON objects in order of first appearance.
    """

    path: Path
    rows: tuple[dict, ...]
    lines: tuple[int, ...]
    columns: tuple[str, ...]

    def at(self, i: int) -> str:
        """``path:line`` of record ``i``."""
        return f"{self.path}:{self.lines[i]}"


def check_encoding(name: str) -> bool:
    """True when Python knows the text encoding ``name``."""
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def read_records(path: str | Path, *, encoding: str = "utf-8", key: str = "path") -> Records:
    """The records of a .csv or .jsonl file.

    Args:
        path: the file.
        encoding: its text encoding (any name Python's codecs know, e.g. "latin-1").
        key: the scenario key that named the file (for messages).
    """
    path = Path(path).expanduser()
    _check_is_file(path, key)
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES + JSONL_SUFFIXES:
        raise TextDataError(f"{path}: unknown format {suffix!r}; use .csv or .jsonl (one JSON object per line)")
    text = decode(path, encoding)
    check_controls(path, text, encoding)
    records = _csv(path, text) if suffix in CSV_SUFFIXES else _jsonl(path, text)
    if not records.rows:
        raise TextDataError(f"{path}: the file holds no records (empty, or a header only); add one line per utterance")
    return records


def _check_is_file(path: Path, key: str) -> None:
    if path.is_dir():
        found = sorted(p.name for p in path.iterdir() if p.suffix.lower() in CSV_SUFFIXES + JSONL_SUFFIXES)
        inside = f" (it holds {', '.join(found[:6])})" if found else ""
        raise TextDataError(
            f"{key} = {str(path)!r} is a folder, not a file{inside}: set {key} to one .csv or .jsonl file; "
            "for separate train and test files set train_path and test_path"
        )
    if not path.is_file():
        raise DataMissingError(f"text data file {path} ({key}) does not exist (relative paths start at {Path.cwd()})")


def decode(path: Path, encoding: str) -> str:
    """The text of ``path``; TextDataError naming the line of the first byte that does not decode."""
    if not check_encoding(encoding):
        raise TextDataError(f"encoding = {encoding!r} is not a known text encoding; use e.g. {_ENCODINGS_HINT}")
    data = path.read_bytes()
    is_utf8 = codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
    try:
        text = data.decode("utf-8-sig" if is_utf8 else encoding)
    except UnicodeDecodeError as exc:
        raise TextDataError(_decode_message(path, data, encoding, exc)) from None
    if "utf" not in codecs.lookup(encoding).name and not data.isascii():
        _check_no_utf8(path, data, encoding)
    return text


def _check_no_utf8(path: Path, data: bytes, encoding: str) -> None:
    """A single-byte encoding would turn UTF-8 text into mojibake ('é' -> 'Ã©'): refuse it, naming the line."""
    if _is_utf8(data):
        raise TextDataError(f"{path}: the file is UTF-8, but encoding = {encoding!r} would misread its non-ASCII "
                            "characters (e.g. 'é' as 'Ã©'); remove the encoding key (UTF-8 is the default)")
    for n, line in enumerate(data.split(b"\n"), start=1):
        if not line.isascii() and _is_utf8(line):
            raise TextDataError(f"{path}:{n}: this line is UTF-8 but encoding = {encoding!r}: the file mixes "
                                "encodings; re-save it in one encoding (UTF-8)")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decode_message(path: Path, data: bytes, encoding: str, exc: UnicodeDecodeError) -> str:
    line = data.count(b"\n", 0, exc.start) + 1
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    where = f"{path}:{line}: byte 0x{data[exc.start]:02x} (column {column}) is not {encoding} text"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return f"{where}; the file starts with a UTF-16 byte-order mark: set encoding = 'utf-16' in the scenario"
    before = data[: data.rfind(b"\n", 0, exc.start) + 1]
    if not before.isascii() and _is_utf8(before):
        return (f"{where}, yet the lines before it hold UTF-8 text: the file mixes encodings; "
                "re-save it in one encoding (UTF-8)")
    return (f"{where}; save the file as UTF-8, or set encoding to the file's encoding in the scenario "
            f"(e.g. encoding = 'latin-1', or 'cp1252' for Windows files)")


#: control characters a text may hold: tab, line feed, carriage return.
ALLOWED_CONTROLS = frozenset("\t\n\r")
_CONTROL = re.compile(r"[^\t\n\r\x20-\x7e\xa0-\U0010ffff]")  # Cc minus the allowed ones


def check_controls(path: Path, text: str, encoding: str = "utf-8") -> None:
    """TextDataError naming the line and column of the first control character that is not allowed."""
    bad = _CONTROL.search(text)
    if bad is None:
        return
    pos, char = bad.start(), bad.group()
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    n = len(_CONTROL.findall(text))
    where = f"{path}:{line}: control character U+{ord(char):04X}{' (NUL)' if char == chr(0) else ''} at column " \
            f"{column} ({n} in the file)"
    if char == "\x00" and n >= len(text) // 4:
        fix = "the file looks like UTF-16 text: set encoding = 'utf-16' in the scenario"
    elif "\x80" <= char <= "\x9f":
        fix = (f"bytes 0x80-0x9f read as {encoding!r} are Windows punctuation: set encoding = 'cp1252' "
               "in the scenario")
    else:
        fix = ("a data file holds text only (tabs and line breaks are allowed): this one is binary or corrupted "
               "(a spreadsheet renamed .csv, a truncated download?); re-export it as UTF-8 CSV or JSON lines, "
               "or remove the character")
    raise TextDataError(f"{where}; {fix}")


def _check_values(path: Path, row: dict, line: int) -> None:
    """Control characters written as JSON escapes (e.g. "\\u0000") in a record's string values."""
    for key, value in row.items():
        if isinstance(value, str) and (bad := _CONTROL.search(value)):
            raise TextDataError(f"{path}:{line}: field {key!r} holds control character U+{ord(bad.group()):04X} "
                                "(a JSON escape); a text may hold tabs and line breaks only: remove it")


def _csv(path: Path, text: str) -> Records:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader, [])]
        _check_header(path, header)
        rows, lines, start = [], [], reader.line_num + 1
        for fields in reader:
            line, start = start, reader.line_num + 1
            if not any(f.strip() for f in fields):
                continue  # blank line
            if len(fields) != len(header):
                raise TextDataError(
                    f"{path}:{line}: {len(fields)} fields, but the header has {len(header)} ({', '.join(header)}); "
                    'put a text that holds a comma in double quotes ("turn on the lights, please")'
                )
            rows.append(dict(zip(header, fields)))
            lines.append(line)
    except csv.Error as exc:
        raise TextDataError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None
    return Records(path, tuple(rows), tuple(lines), tuple(header))


def _check_header(path: Path, header: list[str]) -> None:
    if not header:
        return  # empty file: reported as "no records"
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise TextDataError(f"{path}:1: column(s) {twice} appear more than once in the header; rename them")


def _jsonl(path: Path, text: str) -> Records:
    rows, lines, columns = [], [], {}
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TextDataError(f"{path}:{n}: not valid JSON ({exc}); write one JSON object per line") from None
        if not isinstance(row, dict):
            raise TextDataError(f"{path}:{n}: expected a JSON object per line, got {type(row).__name__}")
        _check_values(path, row, n)
        rows.append(row)
        lines.append(n)
        columns.update(dict.fromkeys(row))
    return Records(path, tuple(rows), tuple(lines), tuple(columns))
