"""Export: the chosen rows (every original column + cluster id/name, rank, reason)
as Parquet, JSONL or CSV, written to a temporary name and renamed, so no partial file
ever has the final name.  The manifest written beside them is :mod:`core.manifest`."""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from core.store.artifacts import tmp_sibling
from core.store.paths import plain_absolute
from core.store.workspace import DATASET_TABLE, SieveError, Workspace

FORMATS = ("parquet", "jsonl", "csv")
_EXT = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}


def format_for(path: Path | str, fmt: str | None = None) -> str:
    """The export format: ``fmt`` when given, else from ``path``'s extension.  Raises SieveError
    for an unknown format or extension."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise SieveError(f"format must be one of {FORMATS}, got {fmt!r}")
        return fmt
    ext = Path(path).suffix.lower()
    if ext not in _EXT:
        raise SieveError(f"cannot tell the export format from {str(path)!r}; use .parquet, .jsonl or .csv")
    return _EXT[ext]


def selection_table(selection, cluster_names: dict[int, str], *, include_duplicates: bool = False):
    """The selection as an Arrow table keyed by ``sieve_row_id``.

    With duplicate groups (dedup) it has ``sieve_group_size`` (rows the chosen row stands
    for: a training weight).  ``include_duplicates`` adds the other members of each
    chosen row's group, with reason ``duplicate-of:<row id>``, rank 0 and the group size."""
    ids = np.asarray(selection.row_ids, dtype=np.int64)
    clusters = np.asarray(selection.clusters, dtype=np.int32)
    ranks = np.asarray(selection.ranks, dtype=np.int32)
    reasons = list(selection.reasons)
    sizes = getattr(selection, "group_sizes", None)
    if include_duplicates and sizes is not None and selection.duplicate_positions is not None \
            and len(selection.duplicate_positions):
        dpos = np.asarray(selection.duplicate_positions, dtype=np.int64)
        of = np.asarray(selection.duplicate_of, dtype=np.int64)
        at = {int(r): i for i, r in enumerate(ids)}
        idx = np.array([at[int(r)] for r in of], dtype=np.int64)
        labels = selection.labels
        ids = np.concatenate([ids, np.asarray(selection.duplicate_row_ids, dtype=np.int64)])
        clusters = np.concatenate([clusters, clusters[idx] if labels is None else np.asarray(labels)[dpos].astype(np.int32)])
        ranks = np.concatenate([ranks, np.zeros(len(dpos), np.int32)])
        reasons = reasons + [f"duplicate-of:{int(r)}" for r in of]
        sizes = np.concatenate([np.asarray(sizes), np.asarray(sizes)[idx]])
    cols = {
        "sieve_row_id": pa.array(ids),
        "sieve_cluster_id": pa.array(clusters.astype(np.int32)),
        "sieve_cluster_name": pa.array([cluster_names.get(int(c), str(c)) for c in clusters], pa.string()),
        "sieve_rank": pa.array(ranks.astype(np.int32)),
        "sieve_reason": pa.array(reasons, pa.string()),
    }
    if sizes is not None:
        cols["sieve_group_size"] = pa.array(np.asarray(sizes, dtype=np.int64))
    return pa.table(cols)


def _copy_options(fmt: str) -> str:
    return {"parquet": "(FORMAT parquet)", "jsonl": "(FORMAT json)", "csv": "(FORMAT csv, HEADER true)"}[fmt]


def export_rows(ws: Workspace, selection, cluster_names: dict[int, str], path: Path | str,
                fmt: str | None = None, *, keep_text: bool = False, include_duplicates: bool = False,
                dataset_key: str | None = None) -> Path:
    """Write the chosen rows to ``path`` atomically; returns the final path.

    ``include_duplicates``: also the other members of each chosen row's duplicate group
    (reason ``duplicate-of:<row id>``, after the chosen rows of their cluster).
    ``dataset_key``: the key of the dataset the selection was made on (``MapData.keys.dataset``);
    the rows are read only if the workspace still holds that dataset, checked in the same
    connection as the read (no other process can write meanwhile), else :class:`SieveError`.
    Disk errors (e.g. no space left) raise :class:`SieveError` naming the file."""
    path = plain_absolute(path)  # a link at the final name is replaced by the rename, never written through
    fmt = format_for(path, fmt)
    with staged_file(path) as tmp:
        copy_rows(ws, selection, cluster_names, tmp, fmt, keep_text=keep_text,
                  include_duplicates=include_duplicates, dataset_key=dataset_key, target=path)
        publish(tmp, path)
    return path


@contextlib.contextmanager
def staged_file(path: Path):
    """A temp name beside ``path`` (removed on the way out unless it was published)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise disk_error(exc, path) from exc
    tmp = tmp_sibling(path)
    try:
        yield tmp
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def publish(tmp: Path, path: Path) -> None:
    """Rename a finished temp file onto its final name (atomic on one file system)."""
    try:
        os.replace(tmp, path)
    except OSError as exc:
        raise disk_error(exc, path) from exc


def disk_error(exc: BaseException, path: Path) -> SieveError:
    """One line for a failed write of ``path``: what went wrong and whether the previous file is intact."""
    text = str(exc)
    reason = "no space left on device" if ("No space left" in text or getattr(exc, "errno", None) == errno.ENOSPC) \
        else (getattr(exc, "strerror", None) or text.strip().splitlines()[0] if text.strip() else type(exc).__name__)
    state = "the previous file is intact" if path.exists() else "no file was written"
    return SieveError(f"could not write {path}: {reason}; {state}")


def current_dataset_key(con) -> str | None:
    """The key of the dataset the workspace holds (read on ``con``), or None."""
    rows = con.execute("SELECT value FROM sieve_meta WHERE key = 'dataset'").fetchall()
    return json.loads(rows[0][0]).get("key") if rows else None


def copy_rows(ws: Workspace, selection, cluster_names: dict[int, str], tmp: Path, fmt: str, *,
              keep_text: bool = False, include_duplicates: bool = False, dataset_key: str | None = None,
              target: Path | None = None) -> None:
    """Write the chosen rows (every original column + the sieve_* columns) to ``tmp`` with
    DuckDB's COPY, after checking that the workspace still holds ``dataset_key``."""
    if len(selection.row_ids) == 0:
        raise SieveError("the selection is empty; nothing to export")
    sel = selection_table(selection, cluster_names, include_duplicates=include_duplicates)
    drop = "sieve_text_ok, sieve_text_hash" + ("" if keep_text else ", sieve_text")
    with ws.connect() as con:
        if dataset_key is not None and current_dataset_key(con) != dataset_key:
            raise SieveError(f"the workspace's dataset changed after this selection was made (it was made on "
                             f"dataset {dataset_key}); nothing was exported to {target or tmp}: select again")
        con.register("sieve_sel", sel)
        try:
            literal = str(tmp).replace("'", "''")
            con.execute(
                f"""COPY (
                    SELECT d.* EXCLUDE ({drop}), s.* EXCLUDE (sieve_row_id)
                    FROM {DATASET_TABLE} d JOIN sieve_sel s USING (sieve_row_id)
                    ORDER BY s.sieve_cluster_id = -1, s.sieve_cluster_id, s.sieve_rank = 0, s.sieve_rank,
                             s.sieve_row_id
                ) TO '{literal}' {_copy_options(fmt)}"""
            )
        except (duckdb.IOException, OSError) as exc:
            raise disk_error(exc, target or tmp) from exc
        finally:
            con.unregister("sieve_sel")
