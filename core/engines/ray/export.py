"""Export at scale: the chosen rows as Parquet part files, their manifest
(:mod:`core.manifest`, the same typed manifest as the local engine's), and reproducing
a sharded manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from core.engines.ray.embed import ScaleEmbedParams, embed_shards
from core.engines.ray.map import ScaleMapParams, scale_map
from core.engines.ray.select import scale_select
from core.manifest import Manifest, dataset_section, new_manifest, reingest
from core.manifest_schema import RAY_KEYS
from core.selection import Selection, SelectParams
from core.stages.cluster import ClusterParams
from core.stages.dataset import current_dataset
from core.stages.project import ProjectParams
from core.store.artifacts import atomic_path
from core.store.paths import plain_absolute
from core.store.workspace import DATASET_TABLE, SieveError, Workspace


def export_scaled(ws: Workspace, selection: Selection, out_dir: Path | str, *, rows_per_file: int = 1_000_000,
                  keep_text: bool = False) -> list[Path]:
    """The chosen rows (every original column + sieve_cluster_id, sieve_rank, sieve_reason)
    as ``part-00000.parquet``... in ``out_dir``, written as a whole folder (temp, then rename);
    returns the part files.  SieveError for an empty selection or a non-empty folder."""
    out_dir = plain_absolute(out_dir)
    if len(selection) == 0:
        raise SieveError("the selection is empty; nothing to export")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise SieveError(f"export folder {out_dir} exists and is not empty; choose a new folder")
    sel = pa.table({"sieve_row_id": pa.array(selection.row_ids.astype(np.int64)),
                    "sieve_cluster_id": pa.array(selection.clusters.astype(np.int32)),
                    "sieve_rank": pa.array(selection.ranks.astype(np.int32)),
                    "sieve_reason": pa.array(selection.reasons, pa.string())})
    drop = "sieve_text_ok, sieve_text_hash" + ("" if keep_text else ", sieve_text")
    names: list[str] = []
    if out_dir.exists():
        out_dir.rmdir()
    with ws.connect() as con, atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        con.register("sieve_sel", sel)
        try:
            for part, start in enumerate(range(0, len(sel), rows_per_file)):
                con.register("sieve_part", sel.slice(start, rows_per_file))
                name = f"part-{part:05d}.parquet"
                lit = str(tmp / name).replace("'", "''")
                con.execute(f"""COPY (SELECT d.* EXCLUDE ({drop}), s.* EXCLUDE (sieve_row_id)
                    FROM {DATASET_TABLE} d JOIN sieve_part s USING (sieve_row_id)
                    ORDER BY s.sieve_cluster_id = -1, s.sieve_cluster_id, s.sieve_rank, s.sieve_row_id
                    ) TO '{lit}' (FORMAT parquet)""")
                con.unregister("sieve_part")
                names.append(name)
        finally:
            con.unregister("sieve_sel")
    return [out_dir / n for n in names]


def ray_manifest(ws: Workspace, embed_dir: Path | str, map_dir: Path | str, params: SelectParams,
                 selection: Selection, export: dict | None = None) -> Manifest:
    """The manifest of a Ray selection (:func:`core.manifest.new_manifest`, the local
    engine's builder): the sharded embedding and map (their ``_meta.json``), the seeded
    sample, and the selection.  Written with :func:`core.manifest.write_manifest`."""
    emeta = json.loads((Path(embed_dir) / "_meta.json").read_text())
    mmeta = json.loads((Path(map_dir) / "_meta.json").read_text())
    ep, mp = emeta["params"], mmeta["params"]
    sections = {
        "engine": "ray",
        "dataset": dataset_section(current_dataset(ws)),
        "model": {"id": emeta["model_id"], "dim": emeta["dim"],
                  "params": {"model": ep["model"], "batch_size": ep["batch_size"], "device": ep["device"],
                             "normalize": ep["normalize"], "backend": ep.get("backend", "torch")}},
        "project": {"params": mp["project"], "key": mmeta["key"]},
        "cluster": {"params": mp["cluster"], "resolved": mmeta.get("resolved_cluster"),
                    "n_clusters": mmeta["n_clusters"]},
        "scale": {"engine": "ray", "shard_rows": ep["shard_rows"], "sample_size": mp["sample_size"],
                  "sample_seed": mp["sample_seed"], "n_sample": mmeta["n_sample"], "embed_folder": str(embed_dir),
                  "map_folder": str(map_dir), "embed_key": emeta["key"], "map_key": mmeta["key"]},
    }
    sizes = selection.stats["cluster_sizes"]
    clusters = [{"id": c, "size": s} for c, s in sorted(sizes.items())]
    return new_manifest(sections, params, selection, keys=RAY_KEYS, clusters=clusters,
                        notes=list(mmeta.get("notes", [])) + list(selection.notes), export=export)


def reproduce_scaled(ws: Workspace, manifest: dict, data: str | None = None, *, allow_changed_data: bool = False,
                     encoder_factory: Callable | None = None, workers: int | None = None,
                     local: bool = False) -> tuple[Selection, Path, Path]:
    """Re-run a sharded manifest (its JSON object): ingest, sharded embed, the same seeded
    sample fit and assignment, and the selection (``local=True``: every step in this process,
    without Ray).  Returns (selection, embed folder, map folder).  SieveError when the data
    differs from the manifest's (unless ``allow_changed_data``)."""
    reingest(ws, manifest, data, allow_changed_data=allow_changed_data)
    sc = manifest["scale"]
    mp = manifest["model"]["params"]
    emb = embed_shards(ws, ScaleEmbedParams(model=mp["model"], batch_size=mp["batch_size"], device=mp["device"],
                                            normalize=mp["normalize"], shard_rows=int(sc["shard_rows"]),
                                            backend=mp.get("backend", "torch"),
                                            workers=workers), encoder_factory=encoder_factory, local=local)
    mparams = ScaleMapParams(int(sc["sample_size"]), int(sc["sample_seed"]),
                             ProjectParams.from_dict(dict(manifest["project"]["params"])),
                             ClusterParams.from_dict(dict(manifest["cluster"]["params"])), workers)
    mres = scale_map(ws, emb.folder, mparams, local=local)
    sel = scale_select(mres.folder, emb.folder, SelectParams.from_dict(manifest["select"]), local=local)
    return sel, emb.folder, mres.folder
