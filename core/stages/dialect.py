"""Reading text files faithfully: CSV/TSV delimiters, encodings and the reader's errors.

- :func:`sniff_delimiter` picks ``,`` ``;`` ``|`` or tab from the head of a CSV file
  with the standard library's ``csv.Sniffer`` (tab for .tsv files).
- :func:`utf8_files` checks that text files are UTF-8 (or transcodes them to UTF-8
  from a user-given ``encoding``); a file that is not gets an error naming it, the
  first bad byte's line, and the encoding ``charset-normalizer`` guesses.
- :func:`reader_error` turns a DuckDB reader error into one line that keeps the
  reason (invalid unicode, line too long, unterminated quote, field counts).
"""

from __future__ import annotations

import codecs
import csv
from pathlib import Path

from core.store.workspace import SieveError

DELIMITERS = (",", ";", "|", "\t")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "|": "pipe", "\t": "tab"}
SNIFF_BYTES = 64 * 1024
UTF8_CHECK_BYTES = 8 * 1024 * 1024
TEXT_FORMATS = ("csv", "tsv", "json", "jsonl")


def parse_delimiter(value: str | None) -> str | None:
    """A user's ``--delimiter``: one character, or a name (comma, semicolon, pipe, tab, ``\\t``)."""
    if value is None or value == "":
        return None
    named = {"comma": ",", "semicolon": ";", "pipe": "|", "tab": "\t", "\\t": "\t"}
    d = named.get(value.lower(), value)
    if len(d) != 1 or d in "\"\r\n":
        raise SieveError(f"delimiter {value!r} must be one character (or comma, semicolon, pipe, tab)")
    return d


def _head_text(path: Path, n: int = SNIFF_BYTES) -> str:
    with open(path, "rb") as fh:
        raw = fh.read(n)
    if len(raw) == n and b"\n" in raw:
        raw = raw[: raw.rfind(b"\n") + 1]  # whole lines only
    return raw.decode("utf-8", errors="replace").lstrip("\ufeff")


def sniff_delimiter(path: Path, fmt: str) -> str:
    """The delimiter of a CSV/TSV file: tab for ``tsv``; else ``csv.Sniffer`` over the
    first 64 KiB restricted to ``, ; | tab``, checked against the header line (a
    delimiter the header lacks is never chosen).  Falls back to the header's most
    frequent candidate, then to ``,``."""
    if fmt == "tsv":
        return "\t"
    head = _head_text(path)
    header = head.splitlines()[0] if head else ""
    try:
        d = csv.Sniffer().sniff(head, delimiters="".join(DELIMITERS)).delimiter
        if d in DELIMITERS and d in header:
            return d
    except csv.Error:
        pass
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def uses_quotes(path: Path, fmt: str, delimiter: str) -> bool:
    """Whether to read ``path`` with RFC 4180 double quotes: always for CSV; for TSV only
    when its first 1 MiB parses strictly that way (many TSV files have no quoting at all,
    and a text such as ``"Hello" she said`` must then stay as written)."""
    if fmt != "tsv":
        return True
    head = _head_text(path, 1 << 20)
    try:
        for _ in csv.reader(head.splitlines(keepends=True), delimiter=delimiter, quotechar='"', doublequote=True,
                            strict=True):
            pass
    except csv.Error:
        return False
    return True


def field_count_problem(path: Path, delimiter: str, max_records: int = 100_000) -> str | None:
    """The first record whose field count differs from the header's, as a sentence
    (or None).  Used to explain a file DuckDB could not parse."""
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            reader = csv.reader(fh, delimiter=delimiter, quotechar='"', doublequote=True, strict=True)
            header = next(reader, None)
            if header is None:
                return None
            for i, rec in enumerate(reader):
                if i >= max_records:
                    break
                if rec and len(rec) != len(header):
                    return (f"record {i + 2} (line {reader.line_num}) has {len(rec)} fields, the header has "
                            f"{len(header)}; quote values that contain the delimiter {delimiter!r}, or give "
                            "--delimiter")
    except csv.Error as exc:
        return f"{exc} (an unterminated quote?)"
    return None


COUNT_CHECK_BYTES = 64 * 1024 * 1024


def count_records(path: Path, delimiter: str, quoted: bool = True) -> int | None:
    """CSV records after the header, by the standard library's parser (blank lines are
    not records), or None when the file is larger than 64 MiB or the parser fails.  A
    cross-check that DuckDB's reader lost no row."""
    if path.stat().st_size > COUNT_CHECK_BYTES:
        return None
    csv.field_size_limit(max(csv.field_size_limit(), COUNT_CHECK_BYTES))
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
            quoting = {} if quoted else {"quoting": csv.QUOTE_NONE}
            reader = csv.reader(fh, delimiter=delimiter, quotechar='"', doublequote=True, strict=True, **quoting)
            if next(reader, None) is None:
                return 0
            return sum(1 for rec in reader if rec)
    except csv.Error:
        return None


def guess_encodings(path: Path, most: int = 3) -> list[str]:
    """charset-normalizer's likeliest encodings for the first 1 MiB of ``path``: up to ``most``
    of those that decode it with the least chaos, best first ([] when it has none).  On a short
    file several legacy code pages fit equally (a Latin-1 file may come first as cp1250), so a
    message shows them together rather than one as fact."""
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - a dependency
        return []
    with open(path, "rb") as fh:
        matches = list(from_bytes(fh.read(1 << 20)))
    if not matches:
        return []
    least = min(m.chaos for m in matches)
    return [m.encoding for m in matches if m.chaos <= least][:most]


def check_utf8(path: Path, limit: int = UTF8_CHECK_BYTES) -> None:
    """Raise a SieveError naming ``path`` when its first ``limit`` bytes are not UTF-8
    (DuckDB's own check covers the rest, see :func:`reader_error`)."""
    dec = codecs.getincrementaldecoder("utf-8")()
    line, seen = 1, 0
    with open(path, "rb") as fh:
        while seen < limit:
            block = fh.read(1 << 20)
            final = not block
            try:
                dec.decode(block, final=final)
            except UnicodeDecodeError as exc:
                bad = block[exc.start: exc.start + 1]
                line += block[: exc.start].count(b"\n")
                raise SieveError(not_utf8_message(path, f"byte 0x{bad.hex()} on line {line}")) from exc
            if final:
                return
            line += block.count(b"\n")
            seen += len(block)


def not_utf8_message(path: Path, where: str = "") -> str:
    """The one-line error for a file that is not UTF-8, with charset-normalizer's guess."""
    guesses = [g for g in guess_encodings(path) if g.replace("_", "-").lower() not in ("utf-8", "ascii")]
    named = " or ".join([", ".join(guesses[:-1]), guesses[-1]] if len(guesses) > 1 else guesses)
    hint = f"; it may be {named} (guessed from its bytes: check accented letters after loading)" if guesses else ""
    at = f" ({where})" if where else ""
    return (f"file {path} is not UTF-8 encoded{at}{hint}; convert it to UTF-8 or give its encoding "
            f"(--encoding in the CLI, Encoding under File format in the app; e.g. latin-1 or cp1252)")


def utf8_files(paths: list[Path], fmt: str, encoding: str | None, tmpdir: Path) -> list[str]:
    """The files DuckDB should read: the originals when they are UTF-8; with another
    ``encoding``, UTF-8 copies written to ``tmpdir``.  Raises SieveError naming the
    file when a file is not UTF-8 or not in ``encoding``."""
    if fmt not in TEXT_FORMATS:
        return [str(p) for p in paths]
    enc = normal_encoding(encoding)
    if enc in (None, "utf-8"):
        for p in paths:
            check_utf8(p)
        return [str(p) for p in paths]
    tmpdir.mkdir(parents=True, exist_ok=True)
    out = []
    for i, p in enumerate(paths):
        target = tmpdir / f"{i:06d}{p.suffix}"
        try:
            with open(p, encoding=enc, newline="") as src, open(target, "w", encoding="utf-8", newline="") as dst:
                for block in iter(lambda: src.read(1 << 20), ""):
                    dst.write(block)
        except UnicodeDecodeError as exc:
            raise SieveError(f"file {p} is not valid {enc}: {exc.reason} at byte {exc.start} of a block") from exc
        out.append(str(target))
    return out


def normal_encoding(encoding: str | None) -> str | None:
    """Python's canonical name of ``encoding`` (None stays None); unknown names are refused."""
    if encoding is None or not str(encoding).strip():
        return None
    try:
        name = codecs.lookup(str(encoding).strip()).name
    except LookupError as exc:
        raise SieveError(f"encoding {encoding!r} is unknown; try utf-8, latin-1, cp1252, utf-16") from exc
    return "utf-8" if name == "utf-8" else name


_REASONS = ("invalid unicode", "not utf-8", "maximum line size", "line size", "unterminated", "expected number of",
            "not possible to automatically detect", "malformed", "could not convert", "mismatch", "no magic bytes",
            "not a parquet", "invalid input", "conversion error")


def reader_error(exc: Exception, path_name: str, fmt: str, files: list[Path] | None = None,
                 delimiter: str | None = None) -> SieveError:
    """One line for a DuckDB reader error: the file, DuckDB's first line, and the line
    that gives the reason (e.g. "Invalid unicode ... not utf-8 encoded", "Maximum line
    size ... exceeded", "Value with unterminated quote"), plus a field-count diagnosis
    for CSV files DuckDB could not sniff."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    first = lines[0] if lines else type(exc).__name__
    low = str(exc).lower()
    if "invalid unicode" in low or "not utf-8" in low or "invalid utf-8" in low:
        bad = next((Path(f) for f in (files or []) if _not_utf8(Path(f))), None)
        return SieveError(not_utf8_message(bad or Path(path_name), first))
    detail = next((ln for ln in lines[1:] if any(k in ln.lower() for k in _REASONS) and ln not in first), None)
    msg = f"could not read {path_name} as {fmt}: {first}" + (f" {detail}" if detail else "")
    if fmt in ("csv", "tsv") and ("sniffing" in low or "expected number of" in low) and files:
        problem = next((pr for f in files if (pr := field_count_problem(Path(f), delimiter or ","))), None)
        msg += f" ({problem})" if problem else " (rows with different numbers of fields, or an unterminated quote?)"
    return SieveError(msg)


def _not_utf8(path: Path) -> bool:
    try:
        check_utf8(path, limit=1 << 62)
    except SieveError:
        return True
    except OSError:
        return False
    return False
