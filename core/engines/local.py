"""Chains the stages through the workspace.  The CLI, the app and the tests all use
these functions, so every surface computes the same thing.

``build_map`` runs embed -> project -> cluster -> label, skipping cached stages.
``load_map`` reads the result back as aligned arrays (:class:`MapData`).
``run_selection`` applies :class:`SelectParams` to a map.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from core import curate
from core.encoders.base import Encoder
from core.manifest import Manifest, check_same_ids, reingest
from core.map_sidecar import import_map_sidecar
from core.scores import score_values
from core.selection import VECTOR_PICKS, Selection, SelectParams
from core.selection import inputs as si
from core.selection import select
from core.stages.cluster import ClusterParams, cluster_key, run_cluster
from core.stages.dataset import DatasetInfo, current_dataset, drop_previous_dataset, restore_dataset, saved_pointers
from core.stages.embed import EmbedParams, run_embed
from core.stages.metrics import selection_metrics
from core.stages.naming import ClusterInfo, LabelParams, load_labels, run_label
from core.stages.project import ProjectParams, project_key, run_project
from core.store.workspace import SieveError, Workspace

META_MAP = "map"
STAGES = ("embed", "project", "cluster", "label")

StageCallback = Callable[[str, str, dict], None]  # (stage, event 'start'|'done', info)
Progress = Callable[[str, int, int, str], None]  # (stage, done, total, message)


@dataclass
class MapParams:
    """The parameters of every map stage (embed, project, cluster, label); JSON via to_dict/from_dict."""

    embed: EmbedParams = field(default_factory=EmbedParams)
    project: ProjectParams = field(default_factory=ProjectParams)
    cluster: ClusterParams = field(default_factory=ClusterParams)
    label: LabelParams = field(default_factory=LabelParams)

    def to_dict(self) -> dict:
        """{stage: its params as a JSON-able dict}."""
        return {k: asdict(getattr(self, k)) for k in ("embed", "project", "cluster", "label")}

    @classmethod
    def from_dict(cls, d: dict) -> "MapParams":
        """From :meth:`to_dict`'s form; fields an old dict lacks keep their old meaning
        (exact seeded UMAP, ...); SieveError naming a bad parameter."""
        return cls(EmbedParams.from_dict(d["embed"]), ProjectParams.from_dict(d["project"]),
                   ClusterParams.from_dict(d["cluster"]), LabelParams(**d["label"]))


@dataclass
class MapKeys:
    """The content keys of a map's dataset and stages (plus timings in seconds and cache hits)."""

    dataset: str
    embed: str
    project: str
    cluster: str
    label: str
    model_id: str
    timings: dict[str, float] = field(default_factory=dict)
    cached: dict[str, bool] = field(default_factory=dict)
    edits: str | None = None  # the curate key when the user's cluster edits apply (core.curate)

    @property
    def map_id(self) -> str:
        """What identifies this map for sessions and caches: the curate key, else the label key."""
        return self.edits or self.label

    def to_dict(self) -> dict:
        """The keys as a JSON-able dict (the workspace's map record)."""
        return dict(self.__dict__)


def build_map(ws: Workspace, params: MapParams = MapParams(), *, encoder: Encoder | None = None,
              on_stage: StageCallback | None = None, progress: Progress | None = None,
              cancel: Callable[[], bool] | None = None, before_project: Callable[[str], None] | None = None,
              edits: list[dict] | None = None, on_wait: Callable[[str], None] | None = None) -> MapKeys:
    """Embed -> project -> cluster -> label the workspace's current dataset, skipping cached
    stages; returns the map's keys and records it as the workspace's current map.
    SieveError for bad data or parameters (one line naming them).

    ``before_project(embed_key)`` runs after the embeddings, under the workspace lock
    (``reproduce`` uses it to import a manifest's stored map).  ``on_wait(holder)`` is
    called when another computation holds the workspace and this one queues behind it.

    ``edits`` (core.curate) are the cluster edits to apply on top of the map; they become
    the workspace's edits of that map.  ``None`` applies the edits the workspace already
    keeps for it (none for a new map)."""
    # Record the backend that runs ("auto" means different things on different machines).
    params = replace(params, embed=params.embed.resolved(encoder))
    with ws.lock("the map", on_wait=on_wait):
        info = current_dataset(ws)
        timings, cached = {}, {}

        def stage(name, fn):
            if on_stage:
                on_stage(name, "start", {})
            t0 = time.perf_counter()
            out = fn()
            timings[name] = round(time.perf_counter() - t0, 3)
            was_cached = out[1] if isinstance(out, tuple) else out.cached
            cached[name] = bool(was_cached)
            if on_stage:
                on_stage(name, "done", {"seconds": timings[name], "cached": cached[name]})
            return out

        def prog(name):
            return (lambda done, total, msg: progress(name, done, total, msg)) if progress else None

        emb = stage("embed", lambda: run_embed(ws, params.embed, encoder=encoder, progress=prog("embed"), cancel=cancel))
        if before_project is not None:
            before_project(emb.key)
        pkey, _ = stage("project", lambda: run_project(ws, emb.key, params.project, progress=prog("project")))
        ckey, _ = stage("cluster", lambda: run_cluster(ws, pkey, params.cluster))
        lkey, _ = stage("label", lambda: run_label(ws, ckey, emb.key, params.label))
        keys = MapKeys(info.key, emb.key, pkey, ckey, lkey, emb.model_id, timings, cached)
        _record(ws, keys, params, info.to_dict())
        stored = curate.stored_edits(ws, lkey)
        edits = stored if edits is None else edits
        return curate_map(ws, keys, edits, params) if (edits or stored) else keys


def _record(ws: Workspace, keys: MapKeys, params: MapParams, dataset: dict) -> None:
    record = {"keys": keys.to_dict(), "params": params.to_dict(), "dataset": dataset}
    ws.set_meta(META_MAP, record)  # the workspace's latest map (for the CLI's next stage)
    ws.set_meta(f"{META_MAP}:{keys.map_id}", record)  # every map by its id (for app sessions)


def curate_map(ws: Workspace, keys: MapKeys, edits: list[dict], params: MapParams | None = None) -> MapKeys:
    """Apply cluster ``edits`` (core.curate; the whole list, replacing the map's earlier
    edits) to the map ``keys`` and make the result the workspace's current map.

    Returns the keys of the curated map (``keys.edits`` set; the base map's keys when
    ``edits`` is empty).  Raises SieveError naming a bad edit; nothing is stored then."""
    base = replace(keys, edits=None)
    if params is None:
        params = map_params(ws, base)
    with ws.lock("cluster edits"):
        edits = curate.normalise_edits(edits)
        ekey = curate.run_curate(ws, base, edits, params.label)[0] if edits else None
        curate.store_edits(ws, base.label, edits)
        new = replace(base, edits=ekey)
        _record(ws, new, params, map_dataset(ws, base).to_dict())
        return new


def current_map(ws: Workspace) -> tuple[MapKeys, MapParams]:
    """The workspace's latest map (keys, params); SieveError when it has none of the current dataset."""
    return _recorded(ws, META_MAP,
                     f"workspace {ws.root} has no map of the current dataset yet; run `sieve map` first")


def map_by_label(ws: Workspace, label_key: str) -> tuple[MapKeys, MapParams]:
    """A map recorded by :func:`build_map`, by its label key (or, for a map with cluster
    edits, its ``MapKeys.map_id``), if it is of the current dataset.

    App sessions keep their own map's key, so one session computing a new map never
    changes what another session is looking at.
    """
    return _recorded(ws, f"{META_MAP}:{label_key}",
                     f"map {label_key} is not a map of the current dataset; compute the map again")


def _recorded(ws: Workspace, meta_key: str, missing: str) -> tuple[MapKeys, MapParams]:
    d = ws.get_meta(meta_key)
    info = current_dataset(ws)  # first: no dataset at all is its own error
    if not d or d["keys"]["dataset"] != info.key:
        raise SieveError(missing)
    return MapKeys(**d["keys"]), MapParams.from_dict(d["params"])


@dataclass
class MapData:
    """Everything the later stages and the app need, aligned by position."""

    dataset: DatasetInfo
    keys: MapKeys
    row_ids: np.ndarray  # (n,) int64
    xy: np.ndarray  # (n, 2) float32
    labels: np.ndarray  # (n,) int32, -1 = noise
    strength: np.ndarray  # (n,) float32
    vectors: np.ndarray  # (n, d) float32, memory-mapped
    clusters: list[ClusterInfo]
    params: MapParams  # the parameters the map was made with (always known: recorded with the map)
    notes: list[str] = field(default_factory=list)
    soft_labels: np.ndarray | None = None  # (n,) int32: for noise rows, their most likely cluster
    soft_strength: np.ndarray | None = None  # (n,) float32: that cluster's soft membership
    xnd: np.ndarray | None = None  # (n, cluster_dims) float32: the projection HDBSCAN ran on
    stage_meta: dict = field(default_factory=dict)  # {"project": meta, "cluster": meta, "embed": {long_texts}}
    edits: list[dict] = field(default_factory=list)  # the cluster edits (core.curate) applied to labels
    base_labels: np.ndarray | None = None  # (n,) int32: HDBSCAN's labels, before the edits
    base_soft_labels: np.ndarray | None = None  # (n,) int32: its soft labels, before the edits

    @property
    def cluster_names(self) -> dict[int, str]:
        """{cluster id: name} (-1: unclustered)."""
        return {c.id: c.name for c in self.clusters}

    def positions(self, row_ids) -> np.ndarray:
        """Positions of the given row ids (which must be on the map)."""
        return np.searchsorted(self.row_ids, np.asarray(row_ids, dtype=np.int64))


def map_params(ws: Workspace, keys: MapKeys) -> MapParams:
    """The parameters recorded with the map ``keys`` (by its id, else its base map's label
    key), whatever the workspace's current dataset; SieveError when it was never recorded."""
    record = ws.get_meta(f"{META_MAP}:{keys.map_id}") or ws.get_meta(f"{META_MAP}:{keys.label}")
    if not record or not record.get("params"):
        raise SieveError(f"map {keys.map_id} is not recorded in workspace {ws.root}; compute the map again")
    return MapParams.from_dict(record["params"])


def map_dataset(ws: Workspace, keys: MapKeys) -> DatasetInfo:
    """The dataset a map was made on (recorded with the map), which is not always the
    workspace's current one; raises :class:`SieveError` when it cannot be known."""
    record = ws.get_meta(f"{META_MAP}:{keys.label}") or {}
    info = DatasetInfo.from_dict(record["dataset"]) if record.get("dataset") else current_dataset(ws)
    if info.key != keys.dataset:
        raise SieveError(f"the map {keys.label} was made on dataset {keys.dataset}, but the workspace now holds "
                         f"dataset {info.key}; compute the map again")
    return info


def load_map(ws: Workspace, keys: MapKeys | None = None) -> MapData:
    """The map ``keys`` (default: the workspace's latest map of its current dataset) as
    aligned arrays; ``MapData.dataset`` is the dataset it was made on and
    ``MapData.params`` the parameters recorded with the map.  SieveError when the map or
    its record is missing, or its stages do not match."""
    if keys is None:
        keys, params = current_map(ws)
    else:
        params = map_params(ws, keys)
    dataset = map_dataset(ws, keys)
    emb, emeta = ws.load_artifact("embed", keys.embed)
    proj, pmeta = ws.load_artifact("project", keys.project)
    clus, cmeta = ws.load_artifact("cluster", keys.cluster)
    row_ids = np.asarray(emb["row_ids"])
    for name, arr in (("project", proj["row_ids"]), ("cluster", clus["row_ids"])):
        if not np.array_equal(row_ids, np.asarray(arr)):
            raise SieveError(f"the {name} result does not match the embeddings; re-run the map")
    labels = np.asarray(clus["labels"])
    soft_labels = np.asarray(clus["soft_labels"]) if "soft_labels" in clus else None
    clusters, edits = load_labels(ws, keys.label), []
    if keys.edits:
        cur, clusters, edits = curate.load_curated(ws, keys.edits)
        if not np.array_equal(row_ids, np.asarray(cur["row_ids"])):
            raise SieveError("the cluster edits do not match the map's rows; apply them again")
    return MapData(
        dataset=dataset,
        keys=keys,
        row_ids=row_ids,
        xy=np.asarray(proj["xy"]),
        labels=np.asarray(cur["labels"]) if keys.edits else labels,
        strength=np.asarray(clus["strength"]),
        vectors=emb["vectors"],
        clusters=clusters,
        params=params,
        notes=list(pmeta.get("notes", [])) + list(cmeta.get("notes", [])),
        soft_labels=np.asarray(cur["soft_labels"]) if keys.edits and "soft_labels" in cur else soft_labels,
        soft_strength=np.asarray(clus["soft_strength"]) if "soft_strength" in clus else None,
        xnd=proj["xnd"],
        stage_meta={"project": pmeta, "cluster": cmeta, "embed": {"long_texts": emeta.get("long_texts")}},
        edits=edits,
        base_labels=labels,
        base_soft_labels=soft_labels,
    )


def run_selection(ws: Workspace, data: MapData, params: SelectParams, *, encoder: Encoder | None = None) -> Selection:
    """Apply ``params`` to a map, gathering what they need (scores, vectors, duplicate
    groups, token counts, strata, soft membership, reference vectors) from the
    workspace, where the expensive ones are cached.  ``encoder`` embeds the reference
    set (default: the map's own model)."""
    scores = score_values(ws, params.score_column, data.row_ids) if params.score_column else None
    needs_vectors = (params.pick in VECTOR_PICKS or params.dedup == "near" or params.leakage != "off"
                     or params.cluster_choice == "coverage")
    vectors = data.vectors if needs_vectors else None
    groups = si.duplicate_groups(ws, data, params) if params.dedup != "none" else None
    tokens = si.token_counts(ws, data, params.tokenizer) if params.budget_unit == "tokens" else None
    strata = si.strata_values(ws, params.strata_column, data.row_ids) if params.strata_column else None
    reference = sims = None
    if params.reference_path:
        reference = si.reference_vectors(ws, data, params, encoder)
        if params.leakage != "off":
            sims = si.reference_sims(ws, data, reference, params.seed)
    target = si.target_positions(ws, data, params, encoder) if params.target_path else None
    selection = select(data.labels, data.row_ids, params, vectors=vectors, scores=scores, groups=groups,
                       token_counts=tokens, strata=strata, soft_labels=data.soft_labels,
                       soft_strength=data.soft_strength, reference_vectors=reference, reference_sims=sims,
                       target_positions=target)
    if params.dedup != "none":
        selection.text_keys = si.text_keys(ws, data)
    if reference is not None:
        selection.reference_vectors = reference
    return selection


def selection_report(data: MapData, selection: Selection, params: SelectParams, *, vectors: bool = True,
                     n_random: int = 5):
    """The selection's metrics beside random subsets of the same size (``n_random`` seeds),
    on the selection's own clusters (soft noise applied) and eligible rows (not banned).

    ``vectors=False`` skips the vector metrics (diversity, facility value, near
    duplicates, reference coverage), e.g. for very large subsets."""
    labels = selection.labels if selection.labels is not None else data.labels
    eligible = None
    if params.bans:
        eligible = np.nonzero(~np.isin(data.row_ids, np.asarray(params.bans, dtype=np.int64)))[0]
    ref = selection.reference_vectors
    return selection_metrics(labels, selection.positions, data.vectors if vectors else None, eligible=eligible,
                             n_random=n_random, seed=params.seed, keys=selection.text_keys,
                             near_threshold=params.near_dup_threshold,
                             reference=ref if vectors else None, coverage_distance=params.coverage_distance)


_restoring = threading.local()


@contextlib.contextmanager
def restoring(ws: Workspace):
    """Run a block under the workspace lock; if it fails, put back the workspace's dataset
    and its dataset/map/selection pointers as they were (``sieve reproduce`` must not leave
    a half-switched workspace).  Re-entrant: only the outermost block restores."""
    active = _restoring.__dict__.setdefault("roots", set())
    key = str(ws.root)
    if key in active:
        yield
        return
    with ws.lock("reproduce"):
        saved = saved_pointers(ws)
        active.add(key)
        try:
            yield
        except BaseException as exc:
            try:
                restore_dataset(ws, saved)
            except Exception as again:  # noqa: BLE001 - say both, never hide the first error
                raise SieveError(f"{exc}; and putting the workspace back failed too: {again}") from exc
            raise
        finally:
            active.discard(key)
            drop_previous_dataset(ws)


def reproduce(ws: Workspace, manifest: dict, data: str | None = None, *, allow_changed_data: bool = False,
              encoder: Encoder | None = None, on_stage: StageCallback | None = None, progress: Progress | None = None,
              manifest_path: str | Path | None = None) -> tuple[MapData, Selection, MapParams, SelectParams]:
    """Rebuild a manifest's selection from its data (or ``data``, a path or glob).

    A map made with the parallel (non-exact) UMAP cannot be recomputed bit for bit, so
    its project and cluster results come from the workspace when it has them, else from
    the map file the export wrote next to the manifest (``manifest["map"]["file"]``,
    relative to ``manifest_path``'s folder), checked against its hash and row ids.  SieveError
    (the workspace left as it was) for changed data, a bad map file or other reproduced ids."""
    with restoring(ws):
        return _reproduce(ws, manifest, data, allow_changed_data=allow_changed_data, encoder=encoder,
                          on_stage=on_stage, progress=progress, manifest_path=manifest_path)


def _reproduce(ws, manifest, data, *, allow_changed_data, encoder, on_stage, progress, manifest_path):
    info = reingest(ws, manifest, data, allow_changed_data=allow_changed_data, keep_previous=True)
    typed = Manifest.from_dict(manifest)  # validated, migrated to the current version
    params = MapParams(typed.embed_params(), typed.project_params(), typed.cluster_params(), typed.label_params())

    def import_stored_map(embed_key: str) -> None:
        pkey = project_key(params.project, embed_key)
        ckey = cluster_key(params.cluster, pkey)
        if ws.has_artifact("project", pkey) and ws.has_artifact("cluster", ckey):
            return
        if not (typed.map or {}).get("required"):
            return  # a seeded single-threaded map (every map of an old manifest) recomputes exactly
        if info.fingerprint != typed.dataset["fingerprint"]:
            return  # changed data (allowed): the stored map is of other rows; recompute
        import_map_sidecar(ws, manifest, manifest_path, embed_key, pkey, ckey, params)

    keys = build_map(ws, params, encoder=encoder, on_stage=on_stage, progress=progress,
                     before_project=import_stored_map, edits=(typed.curate or {}).get("edits") or [])
    data_ = load_map(ws, keys)
    sel_params = typed.select_params()
    selection = run_selection(ws, data_, sel_params, encoder=encoder)
    if not allow_changed_data:
        check_same_ids(typed, selection.row_ids, "; the workspace is left as it was")
    return data_, selection, params, sel_params
