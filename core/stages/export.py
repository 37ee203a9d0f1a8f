"""Export: the chosen rows (every original column + cluster id/name, rank, reason)
as Parquet, JSONL or CSV, and a manifest that lets ``sieve reproduce`` rebuild them.
Both are written to a temporary name and renamed, so no partial file ever has the
final name."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path
import io

import numpy as np
import duckdb
import pyarrow as pa

from core.curate import EDITS_VERSION
from core.store.workspace import DATASET_TABLE, SieveError, Workspace
from core.manifest_check import validate_manifest
from core.store.paths import plain_absolute
from core.store.artifacts import SCHEMA_VERSION, atomic_write_json, file_sha256, read_json_file, tmp_sibling
from core.stages.embed import load_embeddings

FORMATS = ("parquet", "jsonl", "csv")
MANIFEST_VERSION = 1
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


def export_with_manifest(ws: Workspace, selection, cluster_names: dict[int, str], path: Path | str, fmt: str,
                         manifest_path: Path | str, manifest: dict, data=None, *, keep_text: bool = False,
                         include_duplicates: bool = False, dataset_key: str | None = None) -> tuple[Path, Path, dict]:
    """Write the data file and its manifest so that no reader sees a mismatched pair.

    The data is written under a temp name and hashed; the manifest (carrying that sha256
    in ``export.sha256``) is published first, then its map file, then the data.  A crash
    or a full disk before the manifest is published leaves the previous pair intact; one
    after it leaves a new manifest whose hash the old data file fails
    (:func:`verify_export`), never new data beside an old manifest.
    Returns (data path, manifest path, the manifest written)."""
    path = plain_absolute(path)  # a link at the final name is replaced by the rename, never written through
    mpath = plain_absolute(manifest_path)
    with staged_file(path) as tmp:
        copy_rows(ws, selection, cluster_names, tmp, fmt, keep_text=keep_text,
                  include_duplicates=include_duplicates, dataset_key=dataset_key, target=path)
        manifest = {**manifest, "export": {**(manifest.get("export") or {}), "path": str(path),
                                           "file": path.name, "sha256": file_sha256(tmp),
                                           "bytes": tmp.stat().st_size}}
        manifest = write_manifest(mpath, manifest, data, return_manifest=True)
        publish(tmp, path)
    return path, mpath, manifest


def verify_export(manifest: dict, manifest_path: Path | str) -> str | None:
    """None when the data file a manifest names (``export.file``, beside the manifest, else
    ``export.path``) is present and has the manifest's sha256; else one line saying what
    is wrong.  Manifests without a recorded hash (older exports) are not checked."""
    exp = manifest.get("export") or {}
    want = exp.get("sha256")
    if not want:
        return None
    base = Path(manifest_path).expanduser().resolve().parent
    candidates = [base / exp["file"]] if exp.get("file") else []
    if exp.get("path"):
        candidates.append(Path(exp["path"]))
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        return f"the data file of manifest {manifest_path} ({candidates[0] if candidates else '?'}) is missing"
    if file_sha256(found) != want:
        return (f"data file {found} does not match manifest {manifest_path} (sha256 differs): the export was "
                "interrupted or one of them was replaced; export again")
    return None


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("sieve", "numpy", "duckdb", "pyarrow", "umap-learn", "hdbscan", "scikit-learn", "torch",
                 "sentence-transformers", "transformers", "pynndescent", "numba"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def ids_digest(row_ids) -> str:
    h = hashlib.sha256()
    for r in sorted(int(x) for x in row_ids):
        h.update(f"{r}\n".encode())
    return h.hexdigest()


def build_manifest(data, map_params, select_params, selection, metrics=None, export: dict | None = None) -> dict:
    """Everything needed to rebuild ``selection`` from the same data."""
    ds = data.dataset
    per_cluster = []
    chosen = {int(c): int(n) for c, n in zip(*np.unique(selection.clusters, return_counts=True))} if len(selection) else {}
    for c in data.clusters:
        per_cluster.append({"id": c.id, "name": c.name, "size": c.size, "keywords": c.keywords,
                            "budget": selection.allocation.get(c.id, 0), "selected": chosen.get(c.id, 0)})
    mp = map_params.to_dict()
    return {
        "manifest_version": MANIFEST_VERSION,
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "dataset": {
            "sources": ds.sources,
            "fingerprint": ds.fingerprint,
            "key": ds.key,
            "n_rows": ds.n_rows,
            "n_empty": ds.n_empty,
            "n_duplicates": ds.n_duplicates,
            "text": {"column": ds.text.column, "template": ds.text.template},
            "vector_column": ds.vector_column,
            "delimiter": ds.delimiter,  # CSV/TSV: the delimiter read with (given or detected)
            "encoding": ds.encoding,  # None: UTF-8
        },
        "model": {"id": data.keys.model_id, "dim": int(data.vectors.shape[1]), "params": mp["embed"],
                  # texts over the model's token limit / the cell cap (core.encoders.long_text); None: not counted
                  "long_texts": (getattr(data, "stage_meta", None) or {}).get("embed", {}).get("long_texts")},
        "project": {"params": mp["project"], "key": data.keys.project},
        "cluster": {"params": mp["cluster"], "key": data.keys.cluster,
                    "n_clusters": len([c for c in data.clusters if c.id >= 0])},
        "label": {"params": mp["label"], "key": data.keys.label},
        "curate": {"version": EDITS_VERSION, "edits": list(getattr(data, "edits", []) or []),
                   "key": getattr(data.keys, "edits", None)},
        "map": map_section(data, map_params),
        "select": select_params.to_dict(),
        "budget_unit": select_params.budget_unit,
        "selection": _jsonable_stats(getattr(selection, "stats", {}) or {}),
        "clusters": per_cluster,
        "notes": list(data.notes) + list(selection.notes),
        "metrics": metrics.to_dict() if metrics is not None else None,
        "versions": library_versions(),
        "export": export or {},
        "n_selected": int(len(selection)),
        "selected_ids_sha256": ids_digest(selection.row_ids),
        "selected_row_ids": sorted(int(x) for x in selection.row_ids),
    }


def _jsonable_stats(stats: dict) -> dict:

    return json.loads(json.dumps(stats, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


# -- the map sidecar ------------------------------------------------------------------------
# A parallel (non-exact) UMAP map is not bit-reproducible, so the export stores the map
# (row ids, 2-D and n-D coordinates, cluster labels, strengths, soft membership) in
# ``<manifest stem>.map.npz`` next to the manifest; the manifest's "map" section names it
# and records a hash of its content, and ``sieve reproduce`` imports it into a workspace
# that lacks the map.

MAP_ARRAYS = ("row_ids", "xy", "xnd", "labels", "strength", "soft_labels", "soft_strength")


def _map_arrays(data) -> dict[str, np.ndarray]:
    if data.xnd is None:
        raise SieveError("the map has no n-D projection loaded; load it with core.pipeline.load_map")
    n = len(data.row_ids)
    if getattr(data, "base_labels", None) is not None:  # the map before the cluster edits (which replay)
        labels = data.base_labels
        soft_l = data.base_soft_labels if data.base_soft_labels is not None else labels
    else:
        labels = data.labels
        soft_l = data.soft_labels if data.soft_labels is not None else labels
    soft_s = data.soft_strength if data.soft_strength is not None else data.strength
    return {
        "row_ids": np.asarray(data.row_ids, dtype=np.int64).reshape(n),
        "xy": np.asarray(data.xy, dtype=np.float32),
        "xnd": np.asarray(data.xnd, dtype=np.float32),
        "labels": np.asarray(labels, dtype=np.int32),
        "strength": np.asarray(data.strength, dtype=np.float32),
        "soft_labels": np.asarray(soft_l, dtype=np.int32),
        "soft_strength": np.asarray(soft_s, dtype=np.float32),
    }


def map_digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 of the map arrays' names, dtypes, shapes and bytes (not of the zip file,
    whose bytes carry timestamps)."""
    h = hashlib.sha256()
    for name in MAP_ARRAYS:
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}\n".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def map_sidecar_name(manifest_path: Path | str) -> str:
    """``subset.parquet.manifest.json`` -> ``subset.parquet.manifest.map.npz``."""
    name = Path(manifest_path).name
    stem = name[: -len(".json")] if name.lower().endswith(".json") else name
    return f"{stem}.map.npz"


def map_section(data, map_params) -> dict:
    """The manifest's "map" section: the stored map's hash and whether reproducing needs it."""
    arrays = _map_arrays(data) if getattr(data, "xnd", None) is not None else None
    pmeta = (data.stage_meta or {}).get("project", {})
    cmeta = (data.stage_meta or {}).get("cluster", {})
    # a parallel or GPU optimisation made it: recomputing would give another map
    required = not pmeta.get("reproducible", bool(getattr(map_params.project, "exact", True)))
    return {
        "required": required,  # parallel UMAP: the map cannot be recomputed bit for bit
        "file": None,  # set by write_manifest when it writes the sidecar
        "sha256": map_digest(arrays) if arrays is not None else None,
        "n_rows": int(len(data.row_ids)),
        "project_key": data.keys.project,
        "cluster_key": data.keys.cluster,
        "project_notes": list(pmeta.get("notes", [])),
        "cluster_notes": list(cmeta.get("notes", [])),
        "resolved_params": cmeta.get("resolved_params"),
        "n_clusters": cmeta.get("n_clusters"),
    }


def map_sidecar_bytes(data) -> bytes:
    """The map sidecar as bytes (e.g. for a download button beside the manifest)."""
    buf = io.BytesIO()
    np.savez(buf, **_map_arrays(data))
    return buf.getvalue()


def write_map_sidecar(path: Path | str, data) -> Path:
    path = plain_absolute(path)  # a link at the final name is replaced by the rename, never written through
    with staged_file(path) as tmp:
        _write_npz(tmp, data, path)
        publish(tmp, path)
    return path


def _write_npz(tmp: Path, data, target: Path) -> None:
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **_map_arrays(data))
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise disk_error(exc, target) from exc


def write_manifest(path: Path | str, manifest: dict, data=None, *, return_manifest: bool = False):
    """Write ``manifest`` atomically.  With ``data`` (the MapData it was built from) and a
    map that cannot be recomputed exactly, also write the map sidecar next to it: staged
    first, published after the manifest (a crash between leaves a new manifest whose map
    hash the old sidecar fails, never a new map beside an old manifest).
    Returns the path (or the manifest as written, with ``return_manifest``)."""
    path = plain_absolute(path)  # a link at the final name is replaced by the rename, never written through
    section = manifest.get("map")
    with contextlib.ExitStack() as stack:
        side = None
        if data is not None and section and section.get("required") and section.get("sha256"):
            name = map_sidecar_name(path)
            side = (stack.enter_context(staged_file(path.with_name(name))), path.with_name(name))
            _write_npz(side[0], data, side[1])
            manifest = {**manifest, "map": {**section, "file": name}}
        try:
            atomic_write_json(path, manifest)
        except OSError as exc:
            raise disk_error(exc, path) from exc
        if side is not None:
            publish(*side)
    return manifest if return_manifest else path


def import_map_sidecar(ws: Workspace, manifest: dict, manifest_path, embed_key: str, project_key: str,
                       cluster_key: str, map_params) -> None:
    """Store a manifest's map sidecar as the workspace's project and cluster artifacts
    (keys ``project_key`` / ``cluster_key``), after checking its hash and row ids."""
    section = manifest.get("map") or {}
    name = section.get("file")
    base = Path(manifest_path).expanduser().resolve().parent if manifest_path else Path.cwd()
    if not name:
        guess = map_sidecar_name(manifest_path) if manifest_path else "<manifest>.map.npz"
        raise SieveError(
            f"the manifest's map was made with parallel UMAP (exact=false), which cannot be recomputed "
            f"exactly, and the manifest names no map file; expected {base / guess}")
    path = base / name
    if not path.is_file():
        raise SieveError(
            f"map file {path} is missing: the manifest's map was made with parallel UMAP (exact=false) and "
            f"cannot be recomputed exactly; put {name} next to the manifest")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in MAP_ARRAYS}
    except Exception as exc:  # noqa: BLE001 - zip/npy errors of every kind
        raise SieveError(f"map file {path} is not a readable Sieve map file ({type(exc).__name__}: {exc})") from exc
    if map_digest(arrays) != section.get("sha256"):
        raise SieveError(f"map file {path} does not match the manifest's hash; it is corrupted or from another export")

    row_ids, _ = load_embeddings(ws, embed_key)
    if not np.array_equal(np.asarray(row_ids, dtype=np.int64), arrays["row_ids"]):
        raise SieveError(f"map file {path} has other row ids than the data; pass the manifest's original data")
    if project_key != section.get("project_key") or cluster_key != section.get("cluster_key"):
        raise SieveError(f"map file {path} was made for other map keys than this Sieve computes "
                         f"(project {section.get('project_key')} vs {project_key}); re-export with this version")
    n = len(arrays["row_ids"])
    if any(len(arrays[k]) != n for k in MAP_ARRAYS):
        raise SieveError(f"map file {path} has arrays of different lengths")
    note = f"map imported from {path.name} (parallel UMAP is not recomputed)"
    if not ws.has_artifact("project", project_key):
        ws.save_artifact("project", project_key,
                         {"xy": arrays["xy"], "xnd": arrays["xnd"], "row_ids": arrays["row_ids"]},
                         {"parent": embed_key, "params": map_params.project,
                          "notes": list(section.get("project_notes") or []) + [note], "imported_from": str(path)})
    if not ws.has_artifact("cluster", cluster_key):
        ws.save_artifact("cluster", cluster_key,
                         {k: arrays[k] for k in ("labels", "strength", "soft_labels", "soft_strength", "row_ids")},
                         {"parent": project_key, "params": map_params.cluster,
                          "resolved_params": section.get("resolved_params"),
                          "notes": list(section.get("cluster_notes") or []), "n_clusters": section.get("n_clusters"),
                          "imported_from": str(path)})


def read_manifest(path: Path | str) -> dict:
    """A manifest from disk, strictly validated (:func:`core.manifest_check.validate_manifest`):
    a malformed one raises one :class:`SieveError` line naming the file and the key."""
    p = Path(path)
    m = read_json_file(p, "manifest")
    return validate_manifest(m, p, MANIFEST_VERSION)
