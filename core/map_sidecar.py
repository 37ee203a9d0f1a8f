"""The map sidecar of a manifest.

A parallel (non-exact) UMAP map is not bit-reproducible, so the export stores the map
(row ids, 2-D and n-D coordinates, cluster labels, strengths, soft membership) in
``<manifest stem>.map.npz`` next to the manifest; the manifest's "map" section names it
and records a hash of its content, and ``sieve reproduce`` imports it into a workspace
that lacks the map.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np

from core.stages.embed import load_embeddings
from core.stages.export import disk_error, publish, staged_file
from core.store.paths import plain_absolute
from core.store.workspace import SieveError, Workspace

MAP_ARRAYS = ("row_ids", "xy", "xnd", "labels", "strength", "soft_labels", "soft_strength")


def map_arrays(data) -> dict[str, np.ndarray]:
    """The arrays the sidecar stores, from a :class:`core.engines.local.MapData` ``data``:
    row_ids (n,) int64, xy (n, 2) float32, xnd (n, d) float32, labels/soft_labels (n,)
    int32 (before any cluster edits, which replay), strength/soft_strength (n,) float32.
    Raises SieveError when the map has no n-D projection loaded."""
    if data.xnd is None:
        raise SieveError("the map has no n-D projection loaded; load it with core.engines.local.load_map")
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
    arrays = map_arrays(data) if getattr(data, "xnd", None) is not None else None
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
    np.savez(buf, **map_arrays(data))
    return buf.getvalue()


def write_map_sidecar(path: Path | str, data) -> Path:
    """Write the map sidecar of ``data`` to ``path`` atomically (temp file, then rename);
    returns the final path.  Disk errors raise SieveError naming the file."""
    path = plain_absolute(path)  # a link at the final name is replaced by the rename, never written through
    with staged_file(path) as tmp:
        write_map_arrays(tmp, data, path)
        publish(tmp, path)
    return path


def write_map_arrays(tmp: Path, data, target: Path) -> None:
    """Write the sidecar arrays of ``data`` to the staged file ``tmp`` (fsynced); a disk
    error raises SieveError naming ``target``, the final name."""
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **map_arrays(data))
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise disk_error(exc, target) from exc




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

