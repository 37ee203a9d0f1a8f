"""A reference (evaluation) set: its texts read with DuckDB like ingest reads data,
embedded with the map's own model, cached as an artifact keyed by (model id, text
column, file fingerprint).  Used for coverage of the reference by a subset and for
the leakage check (candidate rows that are near-copies of reference rows).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import numpy as np

from core.encoders.models import model_id
from core.encoders.registry import load_encoder
from core.stages.dialect import reader_error, sniff_delimiter, utf8_files
from core.stages.embed import embed_texts
from core.stages.ingest import as_text, blank_regex
from core.stages.sources import detect_format, fingerprint_files, read_raw, resolve_sources
from core.store.artifacts import stage_key
from core.store.workspace import SieveError, Workspace, fetch_arrow

STAGE = "reference"


def read_reference_texts(path: str, column: str = "text") -> tuple[list[str], str]:
    """Non-empty texts of ``column`` in ``path`` (a file or glob) and the files' fingerprint."""
    try:
        paths = resolve_sources(path)
    except SieveError as exc:
        raise SieveError(f"reference_path: {exc}") from exc
    fmt = detect_format(paths, None)
    files = [str(p) for p in paths]
    con = duckdb.connect(":memory:")
    try:
        with tempfile.TemporaryDirectory(prefix="sieve-ref-") as tmp:
            delim = None
            try:
                files = utf8_files(paths, fmt, None, Path(tmp))
                delim = sniff_delimiter(Path(files[0]), fmt) if fmt in ("csv", "tsv") else None
                cols = read_raw(con, files, fmt, delim, paths)
            except duckdb.Error as exc:
                raise reader_error(exc, str(paths[0]), fmt, [Path(f) for f in files], delim) from exc
            except SieveError as exc:
                raise SieveError(f"reference_path: {exc}") from exc
        if column not in cols:
            raise SieveError(f"reference_text: column {column!r} is not in {files[0]}; columns are "
                             + ", ".join(repr(c) for c in list(cols)[:20]))
        text = as_text(column, cols[column])
        tbl = fetch_arrow(con, f"SELECT {text} FROM sieve_raw WHERE {text} IS NOT NULL "
                               "AND NOT regexp_matches(" + text + ", ?)", [blank_regex()])
    finally:
        con.close()
    texts = tbl.column(0).to_pylist()
    if not texts:
        raise SieveError(f"reference_path: {files[0]} has no non-empty {column!r} text")
    return texts, fingerprint_files(paths)


def reference_vectors(ws: Workspace, path: str, column: str, model: str, *, encoder=None,
                      normalize: bool = True, batch_size: int = 64, device: str = "auto") -> np.ndarray:
    """(r, d) unit vectors of the reference texts, embedded with ``model`` (cached)."""
    texts, fingerprint = read_reference_texts(path, column)
    mid = encoder.model_id if encoder is not None else model_id(model)
    key = stage_key(STAGE, {"model": mid, "column": column, "normalize": normalize}, fingerprint)
    if ws.has_artifact(STAGE, key):
        arrays, _ = ws.load_artifact(STAGE, key, mmap=False)
        return np.asarray(arrays["vectors"], dtype=np.float32)
    if encoder is None:
        encoder = load_encoder(model, device=device, normalize=normalize)
    vecs = embed_texts(texts, encoder, batch_size)
    if normalize:
        n = np.linalg.norm(vecs, axis=1, keepdims=True)
        vecs = vecs / np.where(n == 0, 1, n)
    ws.save_artifact(STAGE, key, {"vectors": vecs.astype(np.float32)},
                     {"model_id": mid, "column": column, "fingerprint": fingerprint,
                      "source": str(Path(path)), "n_rows": len(texts)})
    return vecs.astype(np.float32)
