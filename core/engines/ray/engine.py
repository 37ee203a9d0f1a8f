"""The Ray engine behind :class:`core.engines.base.Engine`: sharded embedding, a map fitted
on a seeded sample and assigned shard by shard, per-cluster picks as Ray tasks, and an
export of Parquet part files with the same typed manifest as the local engine's.

What it cannot run is declared where the option lives (:func:`core.engines.base.refusals`:
pick methods' ``engines``, SelectParams field metadata); the map and export options it
refuses are checked here, before any work."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from core.engines.base import Events, Exported, ExportTarget, check_supported, refusals
from core.engines.local import MapParams
from core.engines.ray.cluster import connect
from core.engines.ray.embed import ScaleEmbedParams, ScaleEmbedResult, embed_shards
from core.engines.ray.export import export_scaled, ray_manifest, reproduce_scaled
from core.engines.ray.map import ScaleMapParams, map_folder, scale_map, scaled_map_info
from core.engines.ray.select import count_by_cluster, scale_select
from core.engines.ray.view import draw_points, event_row_ids
from core.manifest import write_manifest
from core.selection import Selection, SelectParams
from core.stages.embed import EmbedParams
from core.store.workspace import SieveError, Workspace


@dataclass(frozen=True)
class ShardedMap:
    """The Ray engine's map handle: the folders of ``map-*.parquet`` and ``vec-*.parquet``
    shards, and the map's ``_meta.json`` (rows, sample, clusters with names and sizes)."""

    folder: Path
    embed_folder: Path
    info: dict

    @classmethod
    def open(cls, folder: Path | str, embed_folder: Path | str) -> "ShardedMap":
        """A finished sharded map; SieveError when ``folder`` holds none."""
        return cls(Path(folder), Path(embed_folder), scaled_map_info(folder))

    @property
    def cluster_names(self) -> dict[int, str]:
        """{cluster id: name} (named from the sample's texts)."""
        return {c["id"]: c["name"] for c in self.info.get("clusters", [])}

    @property
    def n_rows(self) -> int:
        """Rows on the map (every shard)."""
        return int(self.info["n_rows"])

    def draw(self, max_points: int = 100_000, seed: int = 0):
        """At most ``max_points`` rows to draw, every cluster represented (Arrow table:
        sieve_row_id int64, x, y float32, cluster int32; :func:`core.engines.ray.view.draw_points`)."""
        return draw_points(self.folder, max_points, seed)

    def rows_in(self, event) -> tuple[np.ndarray, str]:
        """A plotly selection event on a drawn sample -> (row ids int64 of every row inside its
        boxes and lassos, drawn or not, or the clicked points; how) (:func:`~core.engines.ray.view.event_row_ids`)."""
        return event_row_ids(self.folder, event)

    def count_by_cluster(self, row_ids) -> dict[int, int]:
        """{cluster: how many of ``row_ids``} over the map shards (:func:`core.engines.ray.select.count_by_cluster`)."""
        return count_by_cluster(self.folder, row_ids)


@dataclass
class RayEngine:
    """``address``: the Ray cluster (None: RAY_ADDRESS, else a local instance);
    ``shard_rows``, ``sample_size``, ``sample_seed``, ``workers``: see ScaleEmbedParams and
    ScaleMapParams; ``backend``: the embedding backend (None: the EmbedParams'; "auto" is
    decided by the cluster's GPUs); ``local``: run every step in this process without Ray
    (small corpora, tests); ``encoder_factory``: a picklable zero-argument callable
    returning an Encoder."""

    address: str | None = None
    shard_rows: int = ScaleEmbedParams.shard_rows
    sample_size: int = ScaleMapParams.sample_size
    sample_seed: int = ScaleMapParams.sample_seed
    workers: int | None = None
    backend: str | None = None
    local: bool = False
    encoder_factory: Callable | None = None
    name: str = "ray"
    keeps_selection: bool = False  # `sieve export` repeats a local selection only

    def _connect(self) -> None:
        if not self.local:
            connect(self.address)

    def unsupported(self, params: SelectParams) -> list[str]:
        """:func:`core.engines.base.refusals` for "ray": one line per option it cannot run."""
        return refusals(params, self.name, "Ray")

    def check(self, params: SelectParams) -> None:
        """SieveError naming the first option of ``params`` the Ray engine cannot run."""
        check_supported(params, self.name, "Ray")

    def check_target(self, target: ExportTarget) -> None:
        """Parquet shards only, and no duplicate groups (SieveError)."""
        if target.fmt not in (None, "parquet"):
            raise SieveError(f"--format {target.fmt} is not available with --engine ray: it writes Parquet shards")
        if target.include_duplicates:
            raise SieveError("--include-duplicates is not available with --engine ray (duplicate groups are "
                             "not computed at scale)")

    def check_run(self, map_params: MapParams, sel_params: SelectParams, target: ExportTarget,
                  edits_path: Path | str | None) -> ExportTarget:
        """Refuse, before any hour-long embedding, what the Ray engine cannot do (SieveError);
        returns the target with its folder resolved (it must be new or empty)."""
        self.check_target(target)
        if map_params.cluster.algorithm != "hdbscan":
            raise SieveError(f"--cluster-method {map_params.cluster.algorithm} is available with --engine local only")
        self._check_embed(map_params.embed)
        self._fit_params(map_params)  # sample size and seed, checked
        if edits_path is not None:
            raise SieveError("--edits is not available with --engine ray: cluster edits apply to a local map")
        self.check(sel_params)
        out_dir = Path(target.path).expanduser().resolve()
        if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
            raise SieveError(f"--out {out_dir} exists and is not an empty folder; --engine ray writes a new folder "
                             "of Parquet shards")
        return ExportTarget(out_dir, manifest_path=target.manifest_path)

    @staticmethod
    def _check_embed(params: EmbedParams) -> None:
        if params.long_text != "truncate":
            raise SieveError("--long-text chunk is not available with --engine ray yet; use --engine local")

    def embed(self, ws: Workspace, params: EmbedParams, events: Events = Events()) -> ScaleEmbedResult:
        """The sharded embedding with ``params``' model, batch size, device and backend;
        reports the step ``embeddings`` (ScaleEmbedResult)."""
        self._check_embed(params)
        self._connect()
        res = embed_shards(ws, ScaleEmbedParams(model=params.model, batch_size=params.batch_size, device=params.device,
                                                normalize=params.normalize, shard_rows=self.shard_rows,
                                                workers=self.workers, backend=self.backend or params.backend),
                           encoder_factory=self.encoder_factory, local=self.local)
        events.step("embeddings", res)
        return res

    def map(self, ws: Workspace, params: MapParams, *, edits: list[dict] | None = None,
            events: Events = Events()) -> ShardedMap:
        """Embed, then fit on a seeded sample and place every row (``params.label`` is not used:
        clusters are named from the sample with the default naming).  Steps: ``embeddings``,
        ``scaled_map`` ((ScaleMapResult, the map's info dict))."""
        if edits:
            raise SieveError("--edits is not available with --engine ray: cluster edits apply to a local map")
        fit = self._fit_params(params)  # checked before the embedding
        emb = self.embed(ws, params.embed, events)
        return self._place(ws, emb.folder, fit, events)

    def map_embeddings(self, ws: Workspace, params: MapParams, events: Events = Events()) -> ShardedMap:
        """Fit and place the workspace's latest sharded embeddings (``sieve embed --engine ray``)."""
        return self._place(ws, None, self._fit_params(params), events)

    def _fit_params(self, params: MapParams) -> ScaleMapParams:
        return ScaleMapParams(self.sample_size, self.sample_seed, params.project, params.cluster, self.workers)

    def _place(self, ws: Workspace, embed_dir: Path | None, fit: ScaleMapParams, events: Events) -> ShardedMap:
        self._connect()
        res = scale_map(ws, embed_dir, fit, local=self.local)
        info = scaled_map_info(res.folder)
        handle = ShardedMap(Path(res.folder), Path(info["embed_folder"]), info)
        events.step("scaled_map", (res, info))
        return handle

    def current_map(self, ws: Workspace) -> ShardedMap:
        """The latest sharded map of the current dataset; SieveError when there is none."""
        map_dir, embed_dir = map_folder(ws)
        return ShardedMap.open(map_dir, embed_dir)

    def select(self, ws: Workspace, handle: ShardedMap, params: SelectParams) -> Selection:
        """:func:`core.engines.ray.select.scale_select` (per-cluster picks as Ray tasks)."""
        self._connect()
        return scale_select(handle.folder, handle.embed_folder, params, local=self.local)

    def report(self, handle: ShardedMap, selection: Selection, params: SelectParams, *,
               max_vector_rows: int | None = None) -> None:
        """None: the comparison with random subsets needs the whole map in memory."""
        return None

    def export(self, ws: Workspace, handle: ShardedMap, selection: Selection, params: SelectParams,
               target: ExportTarget, *, metrics=None) -> Exported:
        """Parquet part files in the new or empty folder ``target.path`` and the manifest
        beside it (``metrics`` is not used).  SieveError for a format other than Parquet."""
        self.check_target(target)
        out_dir = Path(target.path).expanduser()
        files = export_scaled(ws, selection, out_dir)
        man = ray_manifest(ws, handle.embed_folder, handle.folder, params, selection,
                           {"path": str(out_dir), "format": "parquet", "files": [f.name for f in files]}).to_dict()
        mpath = write_manifest(target.manifest_file(), man)
        return Exported(out_dir, Path(mpath), man, len(selection), None, list(files))

    def reproduce(self, ws: Workspace, manifest: dict, manifest_path: Path | str, target: ExportTarget, *,
                  data: str | None = None, events: Events = Events()) -> Exported:
        """Re-run a sharded manifest (ingest, sharded embed, the same sample fit, the picks) and
        export it to the new folder ``target.path``; SieveError when the row ids differ.
        Step: ``export``."""
        self._connect()
        sel, embed_dir, map_dir = reproduce_scaled(ws, manifest, data, encoder_factory=self.encoder_factory,
                                                   workers=self.workers, local=self.local)
        if sorted(int(x) for x in sel.row_ids) != manifest["selected_row_ids"]:
            a, b = set(sel.row_ids.tolist()), set(manifest["selected_row_ids"])
            raise SieveError(f"reproduced subset differs from the manifest: {len(a - b)} row(s) added, "
                             f"{len(b - a)} missing")
        exported = self.export(ws, ShardedMap.open(map_dir, embed_dir), sel, SelectParams.from_dict(manifest["select"]),
                               target)
        events.step("export", exported)
        return exported
