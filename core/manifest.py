"""The manifest: everything needed to rebuild an export's selection from the same data.

One typed :class:`Manifest` serves both engines (``core.engines.local`` and
``core.engines.ray``): built from a map and a selection, written atomically (with the
map sidecar, :mod:`core.map_sidecar`, when the map cannot be recomputed exactly), read
back strictly validated and migrated to the current version.  The JSON written is a
contract: its keys and values are those of every earlier Sieve version 1 manifest.

A manifest is data from outside: it is validated strictly on read
(:mod:`core.manifest_schema`), so a malformed one is one :class:`SieveError` line
naming the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from core.curate import EDITS_VERSION
from core.manifest_schema import LOCAL_KEYS, TOP_ORDER, validate_manifest
from core.map_sidecar import map_section, map_sidecar_name, write_map_arrays
from core.selection import SelectParams
from core.stages.cluster import ClusterParams
from core.stages.dataset import DatasetInfo, TextSpec
from core.stages.embed import EmbedParams
from core.stages.export import copy_rows, disk_error, publish, staged_file
from core.stages.ingest import IngestParams, ingest
from core.stages.naming import LabelParams
from core.stages.project import ProjectParams
from core.store.artifacts import SCHEMA_VERSION, atomic_write_json, file_sha256, read_json_file
from core.store.paths import plain_absolute
from core.store.workspace import SieveError, Workspace

MANIFEST_VERSION = 1


@dataclass
class Manifest:
    """A manifest as typed sections.  ``keys`` are the top-level keys the JSON holds, in
    order: a local manifest has label/curate/map/selection/metrics, a Ray one
    engine/scale; :meth:`to_dict` writes exactly those, so the file format is unchanged."""

    manifest_version: int
    dataset: dict[str, Any]
    model: dict[str, Any]
    project: dict[str, Any]
    cluster: dict[str, Any]
    select: dict[str, Any]
    selected_row_ids: list[int]
    schema_version: int | None = SCHEMA_VERSION
    engine: str | None = None
    created: str | None = None
    label: dict[str, Any] | None = None
    curate: dict[str, Any] | None = None
    map: dict[str, Any] | None = None
    scale: dict[str, Any] | None = None
    budget_unit: str | None = None
    selection: dict[str, Any] | None = None
    clusters: list[dict[str, Any]] | None = None
    notes: list[str] | None = None
    metrics: dict[str, Any] | None = None
    versions: dict[str, str] | None = None
    export: dict[str, Any] | None = None
    n_selected: int | None = None
    selected_ids_sha256: str | None = None
    keys: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def to_dict(self) -> dict:
        """The JSON object (only ``keys``, in the canonical order)."""
        return {k: getattr(self, k) for k in TOP_ORDER if k in self.keys}

    @classmethod
    def from_dict(cls, m: Any, path: Path | str = "<manifest>") -> "Manifest":
        """Validate (:func:`validate_manifest`) and migrate ``m``; SieveError naming ``path`` and the key."""
        m = migrate(validate_manifest(m, path, MANIFEST_VERSION))
        return cls(**{k: m[k] for k in m}, keys=tuple(m))

    def embed_params(self) -> EmbedParams:
        """The embedding params (``model.params``); SieveError naming a bad one."""
        return EmbedParams.from_dict(self.model["params"])

    def project_params(self) -> ProjectParams:
        """The projection params (an old manifest without ``exact``: exact seeded UMAP)."""
        return ProjectParams.from_dict(self.project["params"])

    def cluster_params(self) -> ClusterParams:
        """The HDBSCAN params (``cluster.params``)."""
        return ClusterParams.from_dict(self.cluster["params"])

    def label_params(self) -> LabelParams:
        """The naming params (an old manifest without a label section: the defaults)."""
        return LabelParams(**((self.label or {}).get("params") or LabelParams().__dict__))

    def select_params(self) -> SelectParams:
        """The selection params (``select``; an old one keeps its algorithm version)."""
        return SelectParams.from_dict(self.select)

    def text_spec(self) -> TextSpec:
        """How the dataset's text was made (a column or a template)."""
        return TextSpec(**self.dataset["text"])


# migrations from version v to v + 1, applied on read (version 1 is the first and current one)
MIGRATIONS: dict[int, Any] = {}


def migrate(m: dict) -> dict:
    """``m`` (validated) brought to :data:`MANIFEST_VERSION` in memory; the file is not rewritten."""
    while m["manifest_version"] < MANIFEST_VERSION:
        m = MIGRATIONS[m["manifest_version"]](m)
    return m


def dataset_section(ds: DatasetInfo) -> dict:
    """The "dataset" section: what ``sieve reproduce`` ingests again, and its fingerprint."""
    return {
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
    }


def chosen_per_cluster(clusters: np.ndarray) -> dict[int, int]:
    """{cluster id: rows chosen} of a selection's ``clusters`` ((k,) int array)."""
    if len(clusters) == 0:
        return {}
    return {int(c): int(n) for c, n in zip(*np.unique(clusters, return_counts=True))}


def new_manifest(sections: dict, select_params: SelectParams, selection, *, keys: tuple[str, ...],
                 clusters: list[dict], notes: list[str], export: dict | None = None) -> Manifest:
    """A manifest of either engine: the engine's map ``sections`` (dataset, model, project,
    cluster, and label/curate/map or engine/scale) plus what every manifest records of the
    selection (``clusters`` rows without their budget/selected counts, which are added here)."""
    chosen = chosen_per_cluster(np.asarray(selection.clusters))
    rows = [{**c, "budget": selection.allocation.get(c["id"], 0), "selected": chosen.get(c["id"], 0)}
            for c in clusters]
    ids = sorted(int(x) for x in selection.row_ids)
    return Manifest(**sections, manifest_version=MANIFEST_VERSION, schema_version=SCHEMA_VERSION,
                    created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), select=select_params.to_dict(),
                    budget_unit=select_params.budget_unit, clusters=rows, notes=notes,
                    versions=library_versions(), export=export or {}, n_selected=len(ids),
                    selected_ids_sha256=ids_digest(ids), selected_row_ids=ids, keys=keys)


def local_manifest(data, map_params, select_params, selection, metrics=None, export: dict | None = None) -> Manifest:
    """The manifest of a local selection: ``data`` a :class:`core.engines.local.MapData`,
    ``map_params`` its MapParams, ``metrics`` a core.stages.metrics report or None."""
    mp = map_params.to_dict()
    sections = {
        "dataset": dataset_section(data.dataset),
        "model": {"id": data.keys.model_id, "dim": int(data.vectors.shape[1]), "params": mp["embed"],
                  # texts over the model's token limit / the cell cap (core.encoders.long_text); None: not counted
                  "long_texts": (data.stage_meta or {}).get("embed", {}).get("long_texts")},
        "project": {"params": mp["project"], "key": data.keys.project},
        "cluster": {"params": mp["cluster"], "key": data.keys.cluster,
                    "n_clusters": len([c for c in data.clusters if c.id >= 0])},
        "label": {"params": mp["label"], "key": data.keys.label},
        "curate": {"version": EDITS_VERSION, "edits": list(data.edits or []), "key": data.keys.edits},
        "map": map_section(data, map_params),
        "selection": jsonable(selection.stats or {}),
        "metrics": metrics.to_dict() if metrics is not None else None,
    }
    clusters = [{"id": c.id, "name": c.name, "size": c.size, "keywords": c.keywords} for c in data.clusters]
    return new_manifest(sections, select_params, selection, keys=LOCAL_KEYS, clusters=clusters,
                        notes=list(data.notes) + list(selection.notes), export=export)


def build_manifest(data, map_params, select_params, selection, metrics=None, export: dict | None = None) -> dict:
    """Everything needed to rebuild ``selection`` from the same data, as the JSON object
    (:func:`local_manifest`'s :meth:`Manifest.to_dict`)."""
    return local_manifest(data, map_params, select_params, selection, metrics, export).to_dict()


def jsonable(stats: dict) -> dict:
    """``stats`` with numpy scalars as Python numbers (anything else unknown as its str)."""
    return json.loads(json.dumps(stats, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def library_versions() -> dict[str, str]:
    """{distribution: version} of Python and the libraries a map depends on (installed ones only)."""
    out = {"python": platform.python_version()}
    for dist in ("sieve", "numpy", "duckdb", "pyarrow", "umap-learn", "hdbscan", "scikit-learn", "torch",
                 "sentence-transformers", "transformers", "pynndescent", "numba"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def ids_digest(row_ids) -> str:
    """sha256 (hex) of the sorted row ids, one decimal per line: independent of their order."""
    h = hashlib.sha256()
    for r in sorted(int(x) for x in row_ids):
        h.update(f"{r}\n".encode())
    return h.hexdigest()


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


def write_manifest(path: Path | str, manifest: dict | Manifest, data=None, *, return_manifest: bool = False):
    """Write ``manifest`` (its JSON object, or a :class:`Manifest`) atomically.  With
    ``data`` (the MapData it was built from) and a map that cannot be recomputed exactly,
    also write the map sidecar next to it (:mod:`core.map_sidecar`): staged
    first, published after the manifest (a crash between leaves a new manifest whose map
    hash the old sidecar fails, never a new map beside an old manifest).
    Returns the path (or the manifest as written, with ``return_manifest``)."""
    path = plain_absolute(path)  # a link at the final name is replaced by the rename, never written through
    manifest = manifest.to_dict() if isinstance(manifest, Manifest) else manifest
    section = manifest.get("map")
    with contextlib.ExitStack() as stack:
        side = None
        if data is not None and section and section.get("required") and section.get("sha256"):
            name = map_sidecar_name(path)
            side = (stack.enter_context(staged_file(path.with_name(name))), path.with_name(name))
            write_map_arrays(side[0], data, side[1])
            manifest = {**manifest, "map": {**section, "file": name}}
        try:
            atomic_write_json(path, manifest)
        except OSError as exc:
            raise disk_error(exc, path) from exc
        if side is not None:
            publish(*side)
    return manifest if return_manifest else path


def read_manifest(path: Path | str) -> dict:
    """A manifest from disk, strictly validated (:func:`validate_manifest`):
    a malformed one raises one :class:`SieveError` line naming the file and the key."""
    p = Path(path)
    m = read_json_file(p, "manifest")
    return validate_manifest(m, p, MANIFEST_VERSION)


def load_manifest(path: Path | str) -> Manifest:
    """:func:`read_manifest` as a typed :class:`Manifest` (migrated to the current version)."""
    p = Path(path)
    return Manifest.from_dict(read_json_file(p, "manifest"), p)



def check_same_ids(manifest: Manifest, row_ids, tail: str = "") -> None:
    """SieveError saying how many rows were added and missing when the reproduced
    ``row_ids`` are not the manifest's ``selected_row_ids`` (``tail`` ends the line)."""
    got, want = sorted(int(x) for x in row_ids), list(manifest.selected_row_ids)
    if got != want:
        a, b = set(got), set(want)
        raise SieveError(f"reproduced subset differs from the manifest: {len(a - b)} row(s) added, "
                         f"{len(b - a)} missing{tail}")

def reingest(ws: Workspace, manifest: dict, data: str | None = None, *, allow_changed_data: bool = False,
             keep_previous: bool = False) -> DatasetInfo:
    """Ingest a manifest's data again (its sources, or ``data``: a path or glob) with its
    text spec, vector column, delimiter and encoding.  SieveError when the data's
    fingerprint differs from the manifest's, unless ``allow_changed_data``."""
    ds = manifest["dataset"]
    source = data if data is not None else tuple(ds["sources"])
    info, _ = ingest(ws, IngestParams(source, TextSpec(**ds["text"]), ds.get("vector_column"),
                                    delimiter=ds.get("delimiter"), encoding=ds.get("encoding")),
                     keep_previous=keep_previous)
    if info.fingerprint != ds["fingerprint"] and not allow_changed_data:
        raise SieveError(
            f"data {info.sources[0]} differs from the data the manifest was made from "
            f"(fingerprint {info.fingerprint[:12]} vs {ds['fingerprint'][:12]}); pass the original files"
        )
    return info
