"""Distributed embedding: every input shard embedded on a Ray Data actor pool into
``<workspace>/shards/embed/<key>/vec-*.parquet`` (resumable, shard by shard)."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow.parquet as pq

from core.encoders.models import DEFAULT_MODEL, backend_model_id
from core.encoders.registry import load_encoder
from core.engines.ray.cluster import plan_workers, resolve_cluster_backend, run_shard_jobs
from core.engines.ray.shards import (META_SCALE, STAGE_VERSION, input_shards, parquet_glob, shard_name, shards_root,
                                     vector_table, write_parquet_atomic)
from core.stages.dataset import current_dataset
from core.stages.embed import EmbedParams, embed_prepared, encoder_limit, precomputed_vectors
from core.store.artifacts import atomic_write_json, stage_key
from core.store.sql import quote_ident
from core.store.workspace import DATASET_TABLE, SieveError, Workspace, fetch_arrow


@dataclass(frozen=True)
class ScaleEmbedParams:
    """The sharded embedding's parameters (checked on creation: SieveError naming the field)."""

    model: str = DEFAULT_MODEL
    batch_size: int = 64
    device: str = "auto"  # auto: one GPU per actor when the cluster has GPUs, else CPU actors
    normalize: bool = True
    shard_rows: int = 50_000  # row ids per shard (the unit of work and of resume)
    workers: int | None = None  # actors; None: one per GPU, else one per CPU
    threads_per_worker: int = 1  # torch threads (and CPUs reserved) per CPU actor
    # core.stages.embed backends: torch (fp32; fp16 on CUDA, as the local path), onnx-int8, static, or auto:
    # torch when the cluster has GPUs, else onnx-int8 (resolved by embed_shards before the cache key)
    backend: str = "torch"

    def __post_init__(self):
        EmbedParams(model=self.model, batch_size=self.batch_size, device=self.device, normalize=self.normalize,
                    backend=self.backend)
        if isinstance(self.shard_rows, bool) or not isinstance(self.shard_rows, int) or self.shard_rows < 1:
            raise SieveError(f"shard_rows must be a positive integer, got {self.shard_rows!r}")
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or self.workers < 1):
            raise SieveError(f"workers must be a positive integer, got {self.workers!r}")
        if not isinstance(self.threads_per_worker, int) or self.threads_per_worker < 1:
            raise SieveError(f"threads_per_worker must be a positive integer, got {self.threads_per_worker!r}")


@dataclass
class ScaleEmbedResult:
    """What :func:`embed_shards` did: the folder of ``vec-*.parquet`` shards, the model's id
    and dimension, rows and shards (computed now / skipped as done), seconds (wall clock)."""

    key: str
    folder: Path
    model_id: str
    dim: int
    n_rows: int
    n_shards: int
    n_computed: int  # shards embedded by this run
    n_skipped: int  # shards already done (resume)
    seconds: float
    workers: int = 0
    shard_seconds: float = 0.0  # time inside the workers (read, embed, write), summed over shards

    @property
    def glob(self) -> str:
        """The glob of the ``vec-*.parquet`` shards."""
        return parquet_glob(self.folder, "vec")


class _EmbedShards:
    """Ray Data callable class: one encoder per actor; each batch names input shards."""

    def __init__(self, model: str, device: str, normalize: bool, batch_size: int, threads: int,
                 encoder_factory: Callable | None = None, backend: str = "torch"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if encoder_factory is not None:
            self.encoder = encoder_factory()
        else:
            import torch  # heavy: only on the actors that load a model

            torch.set_num_threads(max(1, threads))
            self.encoder = (load_encoder(model, device, normalize) if backend == "torch"
                            else load_encoder(model, device, normalize, backend))
        self.batch_size = batch_size
        # truncate mode: each text is capped and clipped before tokenising (a huge cell is
        # never tokenised whole); the vectors are those of plain truncation
        self.limit = encoder_limit(self.encoder, model)
        self.params = EmbedParams(batch_size=batch_size, normalize=bool(normalize))

    def __call__(self, batch: dict) -> dict:
        rows, secs = [], []
        for src, dst in zip(batch["input"], batch["output"]):
            t0 = time.perf_counter()
            tbl = pq.read_table(str(src), columns=["sieve_row_id", "sieve_text"])
            texts = tbl.column("sieve_text").to_pylist()
            vecs = embed_prepared(texts, self.encoder, self.params, self.limit)
            write_parquet_atomic(str(dst), vector_table(tbl.column("sieve_row_id").to_numpy(), vecs))
            rows.append(len(texts))
            secs.append(time.perf_counter() - t0)
        return {"output": np.asarray(batch["output"]), "rows": np.asarray(rows, dtype=np.int64),
                "seconds": np.asarray(secs, dtype=np.float64)}


def embed_key(ws: Workspace, model_id_: str, params: ScaleEmbedParams) -> str:
    """The content key of a sharded embedding of the current dataset (model, normalisation, shard size)."""
    info = current_dataset(ws)
    return stage_key("embed_shards", {"model": model_id_, "normalize": params.normalize,
                                      "shard_rows": params.shard_rows, "version": STAGE_VERSION}, info.key)


def embed_shards(ws: Workspace, params: ScaleEmbedParams = ScaleEmbedParams(), *,
                 encoder_factory: Callable | None = None, local: bool = False) -> ScaleEmbedResult:
    """Embed the current dataset on Ray into ``<workspace>/shards/embed/<key>/vec-*.parquet``.

    Resumable: shards whose file exists are skipped (files are renamed into place
    whole).  ``encoder_factory``: a picklable zero-argument callable returning an
    :class:`core.encoders.base.Encoder` (tests, custom models); default: the sentence-transformers
    model of ``params`` on each actor's device.  ``local=True`` embeds the same shards in
    this process, without Ray (small corpora, tests)."""
    t0 = time.perf_counter()
    info = current_dataset(ws)
    if info.vector_column:
        return _column_shards(ws, info, params, t0)
    if params.backend == "auto":
        params = replace(params, backend=resolve_cluster_backend(params.device, local=local))
    if encoder_factory is not None:
        probe = encoder_factory()
        mid, dim = probe.model_id, int(probe.dim)
    else:
        mid, dim = backend_model_id(params.model, params.backend), None
    key = embed_key(ws, mid, params)
    folder = shards_root(ws) / "embed" / key
    with ws.lock("sharded embedding"):
        shards = input_shards(ws, params.shard_rows)
    if not shards:
        raise SieveError("the dataset has no non-empty text to embed")
    folder.mkdir(parents=True, exist_ok=True)
    todo = [s for s in shards if not (folder / f"vec-{s['id']}.parquet").is_file()]
    n_workers, shard_seconds = _embed_todo(folder, todo, params, encoder_factory, local) if todo else (0, 0.0)
    if dim is None:
        first = folder / f"vec-{shards[0]['id']}.parquet"
        dim = int(pq.read_schema(first).field("vector").type.list_size)
    res = _finish_embed(ws, info, key, folder, mid, dim, params, shards, len(todo), t0, n_workers)
    res.shard_seconds = round(shard_seconds, 3)
    return res


def _embed_todo(folder: Path, todo: list[dict], params: ScaleEmbedParams, encoder_factory: Callable | None,
                local: bool) -> tuple[int, float]:
    """Embed the input shards ``todo`` into ``folder``; (workers, seconds summed over shards)."""
    if local:
        n_workers, gpus, cpus = 1, 0.0, float(max(1, os.cpu_count() or 1))
        device = params.device
    else:
        n_workers, gpus, cpus = plan_workers(params.workers, params.device, params.threads_per_worker)
        n_workers = min(n_workers, len(todo))
        device = "cuda" if gpus else ("cpu" if params.device == "auto" else params.device)
    items = [{"input": s["path"], "output": str(folder / f"vec-{s['id']}.parquet")} for s in todo]
    out = run_shard_jobs(_EmbedShards, items,
                         dict(model=params.model, device=device, normalize=params.normalize,
                              batch_size=params.batch_size, threads=int(cpus) or 1,
                              encoder_factory=encoder_factory, backend=params.backend),
                         workers=n_workers, cpus=cpus, gpus=gpus, local=local)
    done = {str(r["output"]) for r in out}
    missing = [it["output"] for it in items if it["output"] not in done or not Path(it["output"]).is_file()]
    if missing:
        raise SieveError(f"{len(missing)} shard(s) were not written (first: {missing[0]}); run again to resume")
    return n_workers, float(sum(float(r["seconds"]) for r in out))


def _finish_embed(ws, info, key, folder, mid, dim, params, shards, n_todo, t0, n_workers) -> ScaleEmbedResult:
    n_rows = int(sum(s["rows"] for s in shards))
    atomic_write_json(folder / "_meta.json", {
        "stage": "embed_shards", "key": key, "dataset": info.key, "model_id": mid, "dim": dim,
        "params": asdict(params), "n_rows": n_rows, "shards": [s["id"] for s in shards]})
    ws.set_meta(f"{META_SCALE}:embed", {"key": key, "folder": str(folder), "model_id": mid, "dim": dim,
                                        "params": asdict(params), "dataset": info.key})
    return ScaleEmbedResult(key, folder, mid, dim, n_rows, len(shards), n_todo, len(shards) - n_todo,
                            round(time.perf_counter() - t0, 3), n_workers)


def _column_shards(ws: Workspace, info, params: ScaleEmbedParams, t0: float) -> ScaleEmbedResult:
    """Precomputed vectors (``--vectors COL``): copied into vector shards (normalised like
    the local path), shard by shard, on the driver; no model runs."""
    mid = f"column:{info.vector_column}"
    key = embed_key(ws, mid, params)
    folder = shards_root(ws) / "embed" / key
    folder.mkdir(parents=True, exist_ok=True)
    shards, todo, dim = [], 0, int(info.vector_dim or 0)
    with ws.lock("sharded embedding"), ws.connect() as con:
        top = con.execute(f"SELECT max(sieve_row_id) FROM {DATASET_TABLE}").fetchall()[0][0]
        for start in range(0, (int(top) + 1) if top is not None else 0, params.shard_rows):
            end = start + params.shard_rows
            sid = shard_name(start, end)
            path = folder / f"vec-{sid}.parquet"
            if path.is_file():
                rows = pq.read_metadata(path).num_rows
            else:
                tbl = fetch_arrow(con, f"SELECT sieve_row_id, {quote_ident(info.vector_column)}::DOUBLE[] FROM "
                                       f"{DATASET_TABLE} WHERE sieve_text_ok AND sieve_row_id >= ? "
                                       "AND sieve_row_id < ? "
                                       "ORDER BY sieve_row_id", [start, end])
                rows = tbl.num_rows
                if rows:
                    vecs = precomputed_vectors(tbl.column(0).to_numpy(), tbl.column(1), info.vector_column,
                                               params.normalize)
                    dim = int(vecs.shape[1])
                    write_parquet_atomic(path, vector_table(tbl.column(0).to_numpy(), vecs))
                    todo += 1
            if rows:
                shards.append({"id": sid, "rows": int(rows)})
    return _finish_embed(ws, info, key, folder, mid, dim, params, shards, todo, t0, 0)


def embed_folder(ws: Workspace) -> Path:
    """The latest sharded embedding of the current dataset."""
    rec = ws.get_meta(f"{META_SCALE}:embed")
    if not rec or rec["dataset"] != current_dataset(ws).key:
        raise SieveError(f"workspace {ws.root} has no sharded embedding of the current dataset; "
                         "run `sieve embed --engine ray` first")
    return Path(rec["folder"])
