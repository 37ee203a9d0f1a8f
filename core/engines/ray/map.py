"""The map at scale: the sample fit on the driver, then every row placed on Ray
(``map-*.parquet`` shards: ``sieve_row_id, x, y, cluster, strength, sampled``), the
clusters named from the sample's texts and counted over every row."""

from __future__ import annotations

import json
import pickle
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

from core.engines.ray.cluster import plan_workers, run_shard_jobs
from core.engines.ray.embed import embed_folder
from core.engines.ray.fit import SampleFit, assign, fit_sample, map_table, sample_row_ids
from core.engines.ray.shards import (META_SCALE, STAGE_VERSION, arrow_vectors, cluster_sizes, duck, load_vectors,
                                     parquet_glob, shard_source, shards_root, write_parquet_atomic)
from core.explore_files import fetch_rows
from core.stages.cluster import NOISE, ClusterParams
from core.stages.dataset import current_dataset
from core.stages.naming import label_clusters
from core.stages.project import ProjectParams
from core.store.artifacts import atomic_path, atomic_write_json, stage_key
from core.store.workspace import SieveError, Workspace, fetch_arrow


@dataclass(frozen=True)
class ScaleMapParams:
    """The sharded map's parameters (checked on creation: SieveError naming the field)."""

    sample_size: int = 200_000  # rows the UMAP/HDBSCAN fit sees (the rest are assigned)
    sample_seed: int = 0
    project: ProjectParams = ProjectParams()
    cluster: ClusterParams = ClusterParams()
    workers: int | None = None  # assignment workers; None: one per CPU

    def __post_init__(self):
        if isinstance(self.sample_size, bool) or not isinstance(self.sample_size, int) or self.sample_size < 10:
            raise SieveError(f"sample_size must be an integer >= 10, got {self.sample_size!r}")
        if isinstance(self.sample_seed, bool) or not isinstance(self.sample_seed, int) or self.sample_seed < 0:
            raise SieveError(f"sample_seed must be a non-negative integer, got {self.sample_seed!r}")
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise SieveError(f"workers must be a positive integer, got {self.workers!r}")
        if self.cluster.assign_noise is not None:  # no soft membership here: unclustered rows stay so
            object.__setattr__(self, "cluster", replace(self.cluster, assign_noise=None))

    def to_dict(self) -> dict:
        """The JSON form (``workers`` is not part of it: it does not change the map)."""
        return {"sample_size": self.sample_size, "sample_seed": self.sample_seed,
                "project": asdict(self.project), "cluster": asdict(self.cluster)}

    @classmethod
    def from_dict(cls, d: dict, workers: int | None = None) -> "ScaleMapParams":
        """From :meth:`to_dict`'s form; SieveError naming a bad field."""
        return cls(int(d["sample_size"]), int(d["sample_seed"]), ProjectParams.from_dict(dict(d["project"])),
                   ClusterParams.from_dict(dict(d["cluster"])), workers)


class _AssignShards:
    """Ray Data callable class: places the rows of vector shards with the sample fit."""

    def __init__(self, fit_path: str, threads: int = 1):
        threadpool_limits(max(1, threads))
        with open(fit_path, "rb") as fh:
            self.fit: SampleFit = pickle.load(fh)

    def __call__(self, batch: dict) -> dict:
        fit = self.fit
        rows = []
        for src, dst in zip(batch["input"], batch["output"]):
            tbl = pq.read_table(str(src))
            ids = tbl.column("sieve_row_id").to_numpy().astype(np.int64)
            vecs = arrow_vectors(tbl.column("vector"))
            loc = np.searchsorted(fit.row_ids, ids)
            loc_c = np.minimum(loc, max(len(fit.row_ids) - 1, 0))
            in_sample = (loc < len(fit.row_ids)) & (fit.row_ids[loc_c] == ids) if len(fit.row_ids) else \
                np.zeros(len(ids), bool)
            xy = np.zeros((len(ids), 2), np.float32)
            labels = np.full(len(ids), NOISE, np.int32)
            strength = np.zeros(len(ids), np.float32)
            s = loc_c[in_sample]
            xy[in_sample], labels[in_sample], strength[in_sample] = fit.xy[s], fit.labels[s], fit.strength[s]
            rest = ~in_sample
            if rest.any():
                xy[rest], labels[rest], strength[rest] = assign(fit.models, vecs[rest])
            write_parquet_atomic(str(dst), map_table(ids, xy, labels, strength, in_sample))
            rows.append(len(ids))
        return {"output": np.asarray(batch["output"]), "rows": np.asarray(rows, dtype=np.int64)}


@dataclass
class ScaleMapResult:
    """What :func:`scale_map` did: key and folder of the ``map-*.parquet`` shards, rows,
    sample rows, clusters, shards computed now / skipped, seconds per step, notes."""

    key: str
    folder: Path
    n_rows: int
    n_sample: int
    n_clusters: int
    n_computed: int
    n_skipped: int
    seconds: dict[str, float]
    notes: list[str] = field(default_factory=list)

    @property
    def glob(self) -> str:
        """The glob of the ``map-*.parquet`` shards."""
        return parquet_glob(self.folder, "map")


def scale_map(ws: Workspace, embed_dir: Path | str | None = None,
              params: ScaleMapParams = ScaleMapParams(), *, local: bool = False) -> ScaleMapResult:
    """Fit on a seeded sample (driver), then place every row on Ray (``map-*.parquet``;
    ``local=True``: in this process, without Ray).  The clusters are named from the
    sample's texts (``labels.json``) and counted over every row."""
    t0 = time.perf_counter()
    info = current_dataset(ws)
    embed_dir = Path(embed_dir) if embed_dir is not None else embed_folder(ws)
    emeta = json.loads((embed_dir / "_meta.json").read_text())
    key = stage_key("scale_map", {"params": params.to_dict(), "version": STAGE_VERSION}, emeta["key"])
    folder = shards_root(ws) / "map" / key
    folder.mkdir(parents=True, exist_ok=True)
    shards = emeta["shards"]
    timings: dict[str, float] = {}
    fit, vecs = _sample_fit(folder / "fit.pkl", embed_dir, params, timings)
    todo = [s for s in shards if not (folder / f"map-{s}.parquet").is_file()]
    t2 = time.perf_counter()
    if todo:
        _assign_todo(folder, embed_dir, todo, params, local)
    timings["assign"] = round(time.perf_counter() - t2, 3)
    t3 = time.perf_counter()
    clusters = _cluster_names(ws, folder, embed_dir, fit, vecs)
    timings["label"] = round(time.perf_counter() - t3, 3)
    n_clusters = int(len(set(np.asarray(fit.labels).tolist()) - {NOISE}))
    atomic_write_json(folder / "_meta.json", {
        "stage": "scale_map", "key": key, "parent": emeta["key"], "dataset": info.key,
        "params": params.to_dict(), "resolved_cluster": asdict(fit.params) if fit.params else None,
        "n_rows": emeta["n_rows"], "n_sample": int(len(fit.row_ids)), "n_clusters": n_clusters,
        "shards": shards, "notes": fit.notes, "embed_folder": str(embed_dir), "clusters": clusters})
    ws.set_meta(f"{META_SCALE}:map", {"key": key, "folder": str(folder), "embed_folder": str(embed_dir),
                                      "dataset": info.key, "params": params.to_dict()})
    timings["total"] = round(time.perf_counter() - t0, 3)
    return ScaleMapResult(key, folder, int(emeta["n_rows"]), int(len(fit.row_ids)), n_clusters, len(todo),
                          len(shards) - len(todo), timings, list(fit.notes))


def _sample_fit(fit_path: Path, embed_dir: Path, params: ScaleMapParams,
                timings: dict[str, float]) -> tuple[SampleFit, np.ndarray | None]:
    """The sample fit (cached in ``fit_path``) and the sample's vectors when computed now."""
    if fit_path.is_file():
        with open(fit_path, "rb") as fh:
            return pickle.load(fh), None
    con = duck()
    try:
        ids = fetch_arrow(con, f"SELECT sieve_row_id FROM {shard_source(embed_dir, 'vec')}"
                          ).column(0).to_numpy().astype(np.int64)
    finally:
        con.close()
    sample = sample_row_ids(ids, params.sample_size, params.sample_seed)
    sample_ids, vecs = load_vectors(embed_dir, sample)
    t1 = time.perf_counter()
    fit = fit_sample(sample_ids, vecs, params.project, params.cluster, transformable=len(sample_ids) < len(ids))
    timings["fit"] = round(time.perf_counter() - t1, 3)
    with atomic_path(fit_path) as tmp, open(tmp, "wb") as fh:
        pickle.dump(fit, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return fit, vecs


def _assign_todo(folder: Path, embed_dir: Path, todo: list[str], params: ScaleMapParams, local: bool) -> None:
    """Place the rows of the vector shards ``todo`` (ids) into ``map-<id>.parquet`` shards."""
    n_workers, _, cpus = (1, 0.0, 1.0) if local else plan_workers(params.workers, "cpu")
    items = [{"input": str(embed_dir / f"vec-{s}.parquet"), "output": str(folder / f"map-{s}.parquet")}
             for s in todo]
    run_shard_jobs(_AssignShards, items, dict(fit_path=str(folder / "fit.pkl"), threads=int(cpus)),
                   workers=n_workers, cpus=cpus, local=local)
    missing = [it["output"] for it in items if not Path(it["output"]).is_file()]
    if missing:
        raise SieveError(f"{len(missing)} map shard(s) were not written; run again to resume")


def map_folder(ws: Workspace) -> tuple[Path, Path]:
    """(map folder, embed folder) of the latest sharded map of the current dataset."""
    rec = ws.get_meta(f"{META_SCALE}:map")
    if not rec or rec["dataset"] != current_dataset(ws).key:
        raise SieveError(f"workspace {ws.root} has no sharded map of the current dataset; "
                         "run `sieve scale map` first")
    return Path(rec["folder"]), Path(rec["embed_folder"])


def _cluster_names(ws: Workspace, folder: Path, embed_dir: Path, fit: SampleFit,
                   vecs: np.ndarray | None) -> list[dict]:
    """Each cluster's name and keywords (c-TF-IDF of the sample's texts, core.stages.naming) and its
    size over every row; cached in ``labels.json`` beside the map shards."""
    path = folder / "labels.json"
    if path.is_file():
        named = json.loads(path.read_text())["clusters"]
    else:
        if vecs is None:
            _, vecs = load_vectors(embed_dir, fit.row_ids)
        texts = fetch_rows(ws, fit.row_ids, columns=["sieve_text"]).column("sieve_text").to_pylist()
        infos = label_clusters(texts, np.asarray(fit.labels), vecs, np.asarray(fit.row_ids))
        named = [{"id": c.id, "name": c.name, "keywords": list(c.keywords),
                  "representatives": list(c.representatives), "sample_size": c.size} for c in infos]
        atomic_write_json(path, {"clusters": named})
    con = duck()
    try:
        sizes = cluster_sizes(con, shard_source(folder, "map"))
    finally:
        con.close()
    out = [dict(c, size=int(sizes.get(c["id"], 0))) for c in named]
    known = {c["id"] for c in named}
    for c in sorted(set(int(k) for k in sizes) - known):  # assigned rows only (never in the sample)
        out.append({"id": c, "name": "unclustered" if c == NOISE else f"cluster {c}", "keywords": [],
                    "representatives": [], "sample_size": 0, "size": int(sizes[c])})
    return out


def scaled_map_info(map_dir: Path | str) -> dict:
    """A sharded map's ``_meta.json``: rows, sample, params, notes and ``clusters``
    (id, name, keywords, size over every row, sample_size)."""
    path = Path(map_dir) / "_meta.json"
    if not path.is_file():
        raise SieveError(f"{map_dir} is not a finished sharded map (no _meta.json); run `sieve scale map` again")
    return json.loads(path.read_text())


def load_scaled_map(map_dir: Path | str, columns: Sequence[str] = ("sieve_row_id", "x", "y", "cluster", "strength")):
    """The map shards as one Arrow table in row-id order (for tests and small corpora)."""
    con = duck()
    try:
        cols = ", ".join(columns)
        return fetch_arrow(con, f"SELECT {cols} FROM {shard_source(map_dir, 'map')} "
                                "ORDER BY sieve_row_id")
    finally:
        con.close()
