"""The Ray engine behind :class:`core.engines.base.Engine`: sharded embedding, a map fitted
on a seeded sample and assigned shard by shard, per-cluster picks as Ray tasks, and an
export of Parquet part files with the same typed manifest as the local engine's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.engines.base import ExportResult
from core.engines.local import MapParams
from core.engines.ray.cluster import connect
from core.engines.ray.embed import ScaleEmbedParams, ScaleEmbedResult, embed_shards
from core.engines.ray.export import export_scaled, ray_manifest
from core.engines.ray.map import ScaleMapParams, scale_map, scaled_map_info
from core.engines.ray.select import check_select_params, scale_select
from core.manifest import write_manifest
from core.selection import Selection, SelectParams
from core.store.workspace import Workspace


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


@dataclass
class RayEngine:
    """``address``: the Ray cluster (None: RAY_ADDRESS, else a local instance);
    ``shard_rows``, ``sample_size``, ``sample_seed``, ``workers``: see ScaleEmbedParams and
    ScaleMapParams; ``local``: run every step in this process without Ray (small corpora,
    tests); ``encoder_factory``: a picklable zero-argument callable returning an Encoder."""

    address: str | None = None
    shard_rows: int = ScaleEmbedParams.shard_rows
    sample_size: int = ScaleMapParams.sample_size
    sample_seed: int = ScaleMapParams.sample_seed
    workers: int | None = None
    local: bool = False
    encoder_factory: Callable | None = None
    name: str = "ray"

    def _connect(self) -> None:
        if not self.local:
            connect(self.address)

    def embed(self, ws: Workspace, params: MapParams) -> ScaleEmbedResult:
        """The sharded embedding with ``params.embed``'s model, batch size, device and backend."""
        self._connect()
        e = params.embed
        return embed_shards(ws, ScaleEmbedParams(model=e.model, batch_size=e.batch_size, device=e.device,
                                                 normalize=e.normalize, shard_rows=self.shard_rows,
                                                 workers=self.workers, backend=e.backend),
                            encoder_factory=self.encoder_factory, local=self.local)

    def map(self, ws: Workspace, params: MapParams) -> ShardedMap:
        """Embed, then fit on a seeded sample and place every row (``params.label`` is not used:
        clusters are named from the sample with the default naming)."""
        emb = self.embed(ws, params)
        res = scale_map(ws, emb.folder, ScaleMapParams(self.sample_size, self.sample_seed, params.project,
                                                       params.cluster, self.workers), local=self.local)
        return ShardedMap.open(res.folder, emb.folder)

    def check(self, params: SelectParams) -> None:
        """:func:`core.engines.ray.select.check_select_params`."""
        check_select_params(params)

    def select(self, ws: Workspace, handle: ShardedMap, params: SelectParams) -> Selection:
        """:func:`core.engines.ray.select.scale_select` (per-cluster picks as Ray tasks)."""
        self._connect()
        return scale_select(handle.folder, handle.embed_folder, params, local=self.local)

    def export(self, ws: Workspace, handle: ShardedMap, selection: Selection, params: SelectParams, out: Path,
               manifest_path: Path | None = None) -> ExportResult:
        """Parquet part files in the new folder ``out`` and the manifest beside it."""
        out_dir = Path(out).expanduser().resolve()
        files = export_scaled(ws, selection, out_dir)
        man = ray_manifest(ws, handle.embed_folder, handle.folder, params, selection,
                           {"path": str(out_dir), "format": "parquet", "files": [f.name for f in files]})
        mpath = write_manifest(manifest_path or Path(str(out_dir) + ".manifest.json"), man)
        return ExportResult(files, mpath, man.to_dict())
