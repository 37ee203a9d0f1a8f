"""Scale-out on Ray: embed, map and select corpora too large for one machine.

The single-machine pipeline stays the default; this module is the optional
``sieve[ray]`` path.  Everything is kept as Parquet *shards* under the workspace,
one file per range of row ids, named by that range, so DuckDB reads a whole folder
with ``read_parquet('dir/*.parquet')`` and nothing is ever copied into one file.

* :func:`input_shards` exports the workspace's ``dataset`` table (row id + text) as
  Parquet shards of ``shard_rows`` row ids each.
* :func:`embed_shards` embeds every shard on a Ray Data actor pool (``map_batches``
  with a callable class; one GPU per actor when the cluster has GPUs, else one CPU
  each) and writes ``vec-<start>-<end>.parquet`` (``sieve_row_id``, ``vector`` as a
  fixed-size list of float32).  Each file is written under a temporary name and
  renamed, so a shard file exists whole or not at all: a re-run (after a crash, a
  killed worker or Ctrl-C) skips the shards already done.
* :func:`scale_map` fits UMAP (2-D for display, n-D for clustering) and HDBSCAN on a
  seeded sample of the rows, then projects and assigns every other row in parallel
  (UMAP ``transform``, HDBSCAN ``approximate_predict``), writing ``map-*.parquet``
  shards (``sieve_row_id, x, y, cluster, strength, sampled``).  When the sample
  covers every row the local :func:`core.stages.project.project` and
  :func:`core.stages.cluster.cluster` are used, so the result is the local map's.
* :func:`scale_select` allocates the budget on per-cluster *counts* (DuckDB over the
  map shards), then picks inside each cluster in parallel (Ray tasks calling
  :func:`core.select.select` on that cluster alone, which gives the rows the
  in-memory selection would give).  :func:`export_scaled` writes the chosen rows as
  Parquet shards plus a manifest; :func:`reproduce_scaled` rebuilds it.

Only these stay on the driver: the sample fit (UMAP + HDBSCAN on ``sample_size``
rows), the per-cluster counts and the allocation, and the final list of chosen row
ids.  Ray is imported lazily; importing this module does not need it.
"""

from __future__ import annotations

import json
import os
import pickle
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from core.stages.cluster import NOISE, ClusterParams
from core.stages.embed import EmbedParams, embed_prepared, encoder_limit, precomputed_vectors
from core.encoders.models import DEFAULT_MODEL
from core.store.paths import plain_absolute
from core.stages.project import ProjectParams
from .selection import engine_picks
from core.store.workspace import SieveError, Workspace
from core.store.artifacts import atomic_path, atomic_write_json, stage_key

ENGINES = ("local", "ray")
SHARDS_DIR = "shards"
META_SCALE = "scale"  # workspace meta key: the latest sharded embed/map
STAGE_VERSION = 1

# -- parameters ------------------------------------------------------------------------


@dataclass(frozen=True)
class ScaleEmbedParams:
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
        extra = {"backend": self.backend} if "backend" in EmbedParams.__dataclass_fields__ else {}
        EmbedParams(model=self.model, batch_size=self.batch_size, device=self.device, normalize=self.normalize,
                    **extra)
        if isinstance(self.shard_rows, bool) or not isinstance(self.shard_rows, int) or self.shard_rows < 1:
            raise SieveError(f"shard_rows must be a positive integer, got {self.shard_rows!r}")
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or self.workers < 1):
            raise SieveError(f"workers must be a positive integer, got {self.workers!r}")
        if not isinstance(self.threads_per_worker, int) or self.threads_per_worker < 1:
            raise SieveError(f"threads_per_worker must be a positive integer, got {self.threads_per_worker!r}")


@dataclass(frozen=True)
class ScaleMapParams:
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

    def to_dict(self) -> dict:
        return {"sample_size": self.sample_size, "sample_seed": self.sample_seed,
                "project": asdict(self.project), "cluster": asdict(self.cluster)}

    @classmethod
    def from_dict(cls, d: dict, workers: int | None = None) -> "ScaleMapParams":
        return cls(int(d["sample_size"]), int(d["sample_seed"]), _params_from(ProjectParams, d["project"]),
                   _params_from(ClusterParams, d["cluster"]), workers)


def _params_from(cls, d: dict):
    """A params dataclass from a manifest dict (its own ``from_dict`` when it has one)."""
    make = getattr(cls, "from_dict", None)
    return make(dict(d)) if make is not None else cls(**d)


# -- Ray session ---------------------------------------------------------------------------


def connect(address: str | None = None, *, num_cpus: int | None = None, num_gpus: int | None = None,
            object_store_memory: int | None = None, env: dict[str, str] | None = None) -> None:
    """Start or join a Ray cluster (no-op when this process is already connected).

    ``address``: ``"auto"``, ``"ray://host:10001"`` or ``"host:6379"`` for an existing
    cluster (``RAY_ADDRESS`` also works); None starts a local instance with
    ``num_cpus``/``num_gpus``/``object_store_memory``.  The workers inherit
    ``HF_HUB_OFFLINE`` and ``env``."""
    # Ray's progress bars replace builtins.print with a Python function, after which numba
    # can no longer compile any code that prints (pynndescent, umap): keep print as it is.
    os.environ.setdefault("RAY_TQDM_PATCH_PRINT", "0")
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SieveError("the Ray engine needs Ray: pip install 'sieve[ray]'") from exc
    if ray.is_initialized():
        return
    env_vars = {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), "TOKENIZERS_PARALLELISM": "false",
                "RAY_TQDM_PATCH_PRINT": "0"}
    env_vars.update(env or {})
    kw: dict[str, Any] = dict(include_dashboard=False, runtime_env={"env_vars": env_vars},
                              logging_level="WARNING", log_to_driver=False)
    if address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=address or os.environ["RAY_ADDRESS"], **kw)
    else:
        ray.init(num_cpus=num_cpus, num_gpus=num_gpus, object_store_memory=object_store_memory, **kw)
    _quiet_data()


def _quiet_data() -> None:
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    if hasattr(ctx, "print_on_execution_start"):
        ctx.print_on_execution_start = False


def _require_ray():
    os.environ.setdefault("RAY_TQDM_PATCH_PRINT", "0")  # see connect()
    try:
        import ray
    except ImportError as exc:  # pragma: no cover
        raise SieveError("the Ray engine needs Ray: pip install 'sieve[ray]'") from exc
    if not ray.is_initialized():
        connect()
    _quiet_data()
    return ray


def plan_workers(workers: int | None, device: str = "auto", threads: int = 1) -> tuple[int, float, float]:
    """(actors, GPUs per actor, CPUs per actor) sized from ``ray.available_resources()``."""
    ray = _require_ray()
    res = ray.available_resources()
    gpus = int(res.get("GPU", 0))
    cpus = max(1, int(res.get("CPU", 1)))
    if device == "cuda" and gpus == 0:
        raise SieveError("device='cuda' was asked for but the Ray cluster has no GPU")
    if device in ("auto", "cuda") and gpus > 0:
        return (workers or gpus), 1.0, 1.0
    return (workers or max(1, cpus // threads)), 0.0, float(threads)


# -- shards -------------------------------------------------------------------------------


def resolve_cluster_backend(device: str = "auto", *, local: bool = False) -> str:
    """What backend "auto" means for the workers: torch when they get GPUs (the cluster
    has some and ``device`` allows them), else onnx-int8 where onnxruntime is installed
    (the local CPU default), else torch."""
    from core.encoders.registry import resolve_backend

    if local:
        return resolve_backend("auto", device)
    if device in ("auto", "cuda"):
        ray = _require_ray()
        if int(ray.available_resources().get("GPU", 0)) > 0:
            return "torch"
    return resolve_backend("auto", "cpu")


def shard_name(start: int, end: int) -> str:
    return f"{start:012d}-{end:012d}"


def _shards_root(ws: Workspace) -> Path:
    return ws.root / SHARDS_DIR


def input_shards(ws: Workspace, shard_rows: int) -> list[dict]:
    """The workspace dataset's embeddable rows (``sieve_row_id``, ``sieve_text``) as Parquet
    shards of ``shard_rows`` row ids; written once per (dataset, shard_rows).  Returns
    ``[{"id", "start", "end", "rows", "path"}]`` in row-id order (shards with no
    embeddable row are left out)."""
    from core.stages.dataset import current_dataset
    from core.store.workspace import DATASET_TABLE

    info = current_dataset(ws)
    folder = _shards_root(ws) / "input" / f"{info.key}-{shard_rows}"
    listing = folder / "_shards.json"
    if listing.is_file():
        shards = json.loads(listing.read_text())["shards"]
        if all((folder / s["file"]).is_file() for s in shards):
            return [dict(s, path=str(folder / s["file"])) for s in shards]
    folder.mkdir(parents=True, exist_ok=True)
    shards = []
    with ws.connect() as con:
        top = con.execute(f"SELECT max(sieve_row_id) FROM {DATASET_TABLE}").fetchall()[0][0]
        for start in range(0, (int(top) + 1) if top is not None else 0, shard_rows):
            end = start + shard_rows
            n = con.execute(f"SELECT count(*) FROM {DATASET_TABLE} WHERE sieve_text_ok AND sieve_row_id >= ? "
                            "AND sieve_row_id < ?", [start, end]).fetchall()[0][0]
            if not n:
                continue
            name = f"rows-{shard_name(start, end)}.parquet"
            if not (folder / name).is_file():
                with atomic_path(folder / name) as tmp:
                    lit = str(tmp).replace("'", "''")
                    con.execute(
                        f"COPY (SELECT sieve_row_id, sieve_text FROM {DATASET_TABLE} WHERE sieve_text_ok AND "
                        f"sieve_row_id >= {start} AND sieve_row_id < {end} ORDER BY sieve_row_id) "
                        f"TO '{lit}' (FORMAT parquet)")
            shards.append({"id": shard_name(start, end), "start": start, "end": end, "rows": int(n), "file": name})
    atomic_write_json(listing, {"dataset": info.key, "shard_rows": shard_rows, "shards": shards})
    return [dict(s, path=str(folder / s["file"])) for s in shards]


def vector_table(row_ids: np.ndarray, vectors: np.ndarray):
    """(``sieve_row_id`` int64, ``vector`` fixed_size_list<float32>[dim]) as an Arrow table."""
    import pyarrow as pa

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    flat = pa.array(vectors.reshape(-1), pa.float32())
    return pa.table({"sieve_row_id": pa.array(np.asarray(row_ids, dtype=np.int64)),
                     "vector": pa.FixedSizeListArray.from_arrays(flat, int(vectors.shape[1]))})


def arrow_vectors(column) -> np.ndarray:
    """A (fixed-size) list column of floats as an (n, dim) float32 array."""
    import pyarrow as pa

    col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(col)
    if n == 0:
        return np.zeros((0, 0), np.float32)
    flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(n, -1)


def write_parquet_atomic(path: Path | str, table) -> Path:
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def parquet_glob(folder: Path | str, prefix: str) -> str:
    return str(Path(folder) / f"{prefix}-*.parquet")


def _duck():
    import duckdb

    return duckdb.connect()


def _cluster_sizes(con, src: str, row_ids: Sequence[int] | None = None) -> dict[int, int]:
    """{cluster: rows} over the map shards ``src`` (a ``read_parquet(...)`` expression);
    only the rows in ``row_ids`` when given."""
    if row_ids is None:
        rows = con.execute(f"SELECT cluster, count(*) FROM {src} GROUP BY cluster").fetchall()
    else:
        import pyarrow as pa

        con.register("sieve_ids", pa.table({"sieve_row_id": pa.array(np.asarray(row_ids, dtype=np.int64))}))
        try:
            rows = con.execute(f"SELECT m.cluster, count(*) FROM {src} m SEMI JOIN sieve_ids USING (sieve_row_id) "
                               "GROUP BY m.cluster").fetchall()
        finally:
            con.unregister("sieve_ids")
    return {int(c): int(n) for c, n in rows}


def _sql_str(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def load_vectors(embed_dir: Path | str, row_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(row ids, vectors) from the vector shards in row-id order (optionally only ``row_ids``)."""
    import pyarrow as pa

    from core.store.workspace import fetch_arrow

    con = _duck()
    try:
        src = f"read_parquet({_sql_str(parquet_glob(embed_dir, 'vec'))})"
        if row_ids is None:
            tbl = fetch_arrow(con, f"SELECT sieve_row_id, vector FROM {src} ORDER BY sieve_row_id")
        else:
            con.register("wanted", pa.table({"sieve_row_id": pa.array(np.asarray(row_ids, dtype=np.int64))}))
            tbl = fetch_arrow(con, f"SELECT v.sieve_row_id, v.vector FROM {src} v SEMI JOIN wanted w "
                                   "USING (sieve_row_id) ORDER BY v.sieve_row_id")
    finally:
        con.close()
    return tbl.column(0).to_numpy().astype(np.int64), arrow_vectors(tbl.column(1))


def run_shard_jobs(worker_cls, items: list[dict], ctor_kwargs: dict, *, workers: int = 1, cpus: float = 1.0,
                   gpus: float = 0.0, local: bool = False) -> list[dict]:
    """Run ``worker_cls`` (a Ray Data callable class taking ``{"input": [...], "output": [...]}``
    batches) over ``items``, one shard per batch: on a Ray actor pool of ``workers`` actors,
    or (``local=True``) in this process with one instance, which needs no Ray.  Returns one
    dict per finished shard."""
    if not items:
        return []
    if local:
        worker = worker_cls(**ctor_kwargs)
        out = []
        for it in items:
            res = worker({"input": np.asarray([it["input"]]), "output": np.asarray([it["output"]])})
            out.extend({k: v[i] for k, v in res.items()} for i in range(len(res["output"])))
        return out
    ray = _require_ray()
    return ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        worker_cls, batch_size=1, compute=ray.data.ActorPoolStrategy(size=max(1, min(workers, len(items)))),
        num_cpus=cpus, num_gpus=gpus or None, fn_constructor_kwargs=ctor_kwargs,
    ).take_all()


# -- 1. distributed embedding ---------------------------------------------------------------


@dataclass
class ScaleEmbedResult:
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
        return parquet_glob(self.folder, "vec")


class _EmbedShards:
    """Ray Data callable class: one encoder per actor; each batch names input shards."""

    def __init__(self, model: str, device: str, normalize: bool, batch_size: int, threads: int,
                 encoder_factory: Callable | None = None, backend: str = "torch"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if encoder_factory is not None:
            self.encoder = encoder_factory()
        else:
            import torch

            from core.encoders.registry import load_encoder

            torch.set_num_threads(max(1, threads))
            self.encoder = (load_encoder(model, device, normalize) if backend == "torch"
                            else load_encoder(model, device, normalize, backend))
        self.batch_size = batch_size
        # truncate mode: each text is capped and clipped before tokenising (a huge cell is
        # never tokenised whole); the vectors are those of plain truncation
        self.limit = encoder_limit(self.encoder, model)
        self.params = EmbedParams(batch_size=batch_size, normalize=bool(normalize))

    def __call__(self, batch: dict) -> dict:
        import pyarrow.parquet as pq

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
    from core.stages.dataset import current_dataset

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
    from core.encoders.models import model_id as model_id_of
    from core.stages.dataset import current_dataset

    t0 = time.perf_counter()
    info = current_dataset(ws)
    if info.vector_column:
        return _column_shards(ws, info, params, t0)
    if params.backend == "auto":
        from dataclasses import replace

        params = replace(params, backend=resolve_cluster_backend(params.device, local=local))
    if encoder_factory is not None:
        probe = encoder_factory()
        mid, dim = probe.model_id, int(probe.dim)
    else:
        from core.stages import embed as embed_mod

        named = getattr(embed_mod, "backend_model_id", None)
        mid, dim = (named(params.model, params.backend) if named else model_id_of(params.model)), None
    key = embed_key(ws, mid, params)
    folder = _shards_root(ws) / "embed" / key
    with ws.lock("sharded embedding"):
        shards = input_shards(ws, params.shard_rows)
    if not shards:
        raise SieveError("the dataset has no non-empty text to embed")
    folder.mkdir(parents=True, exist_ok=True)
    todo = [s for s in shards if not (folder / f"vec-{s['id']}.parquet").is_file()]
    n_workers, shard_seconds = 0, 0.0
    if todo:
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
        shard_seconds = float(sum(float(r["seconds"]) for r in out))
        missing = [it["output"] for it in items if it["output"] not in done or not Path(it["output"]).is_file()]
        if missing:
            raise SieveError(f"{len(missing)} shard(s) were not written (first: {missing[0]}); run again to resume")
    import pyarrow.parquet as pq

    if dim is None:
        first = folder / f"vec-{shards[0]['id']}.parquet"
        dim = int(pq.read_schema(first).field("vector").type.list_size)
    res = _finish_embed(ws, info, key, folder, mid, dim, params, shards, len(todo), t0, n_workers)
    res.shard_seconds = round(shard_seconds, 3)
    return res


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
    from core.store.workspace import DATASET_TABLE
    from core.store.workspace import fetch_arrow
    from core.store.sql import quote_ident

    mid = f"column:{info.vector_column}"
    key = embed_key(ws, mid, params)
    folder = _shards_root(ws) / "embed" / key
    folder.mkdir(parents=True, exist_ok=True)
    shards, todo, dim = [], 0, int(info.vector_dim or 0)
    with ws.lock("sharded embedding"), ws.connect() as con:
        top = con.execute(f"SELECT max(sieve_row_id) FROM {DATASET_TABLE}").fetchall()[0][0]
        for start in range(0, (int(top) + 1) if top is not None else 0, params.shard_rows):
            end = start + params.shard_rows
            sid = shard_name(start, end)
            path = folder / f"vec-{sid}.parquet"
            if path.is_file():
                import pyarrow.parquet as pq

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
    from core.stages.dataset import current_dataset

    rec = ws.get_meta(f"{META_SCALE}:embed")
    if not rec or rec["dataset"] != current_dataset(ws).key:
        raise SieveError(f"workspace {ws.root} has no sharded embedding of the current dataset; "
                         "run `sieve embed --engine ray` first")
    return Path(rec["folder"])


# -- 2. map at scale -----------------------------------------------------------------------


def sample_row_ids(row_ids: np.ndarray, size: int, seed: int) -> np.ndarray:
    """A seeded uniform sample (sorted) of ``size`` of ``row_ids`` (all of them when fewer)."""
    row_ids = np.sort(np.asarray(row_ids, dtype=np.int64))
    if size >= len(row_ids):
        return row_ids
    rng = np.random.default_rng([int(seed), 0x5CA1E])
    return np.sort(row_ids[rng.choice(len(row_ids), size, replace=False)])


@dataclass
class SampleFit:
    """What the sample fit produced: coordinates/labels of the sample rows and the models
    that place every other row (None when the sample is every row)."""

    row_ids: np.ndarray
    xy: np.ndarray
    labels: np.ndarray
    strength: np.ndarray
    models: Any = None  # (umap 2-D, umap n-D, hdbscan, raw->renumbered mapping)
    params: ClusterParams | None = None
    notes: list[str] = field(default_factory=list)


def fit_sample(row_ids: np.ndarray, vectors: np.ndarray, project_params: ProjectParams,
               cluster_params: ClusterParams, *, transformable: bool = True) -> SampleFit:
    """Pure: fit the map on the sample.  ``transformable=False`` (the sample is every
    row) uses the local :func:`core.stages.project.project` + :func:`core.stages.cluster.cluster`."""
    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(vectors)
    if not transformable:
        from core.stages.cluster import cluster
        from core.stages.distinct import duplicate_groups
        from core.stages.project import project

        if "exact" in getattr(ProjectParams, "__dataclass_fields__", {}):
            from dataclasses import replace

            project_params = replace(project_params, exact=True)  # seeded, single-threaded: reproducible
        proj = project(vectors, project_params)
        clus = cluster(proj.xnd, cluster_params, groups=duplicate_groups(vectors))  # identical rows: one group
        return SampleFit(np.asarray(row_ids), proj.xy, clus.labels, clus.strength, None, clus.params,
                         proj.notes + clus.notes)
    import warnings

    import hdbscan
    import umap

    from core.stages.cluster import relabel_by_size

    k = min(project_params.n_neighbors, n - 1)
    models, out = [], []
    for dims, md in ((2, project_params.min_dist), (project_params.cluster_dims, project_params.cluster_min_dist)):
        reducer = umap.UMAP(n_components=dims, n_neighbors=k, min_dist=md, metric=project_params.metric,
                            random_state=project_params.seed, init="spectral")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.append(np.asarray(reducer.fit_transform(vectors), dtype=np.float32))
        models.append(reducer)
    p = cluster_params.resolved(n)
    hdb = hdbscan.HDBSCAN(min_cluster_size=p.min_cluster_size, min_samples=p.min_samples,
                          cluster_selection_method=p.method, cluster_selection_epsilon=float(p.epsilon),
                          core_dist_n_jobs=1, prediction_data=True)
    raw = hdb.fit_predict(out[1].astype(np.float64)).astype(np.int64)
    labels, mapping = relabel_by_size(raw, return_mapping=True)
    strength = np.nan_to_num(np.asarray(hdb.probabilities_, dtype=np.float32), nan=0.0)
    notes = [] if (labels != NOISE).any() else ["HDBSCAN found no cluster in the sample"]
    return SampleFit(np.asarray(row_ids), out[0], labels, strength, (models[0], models[1], hdb, mapping), p, notes)


def assign(models, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pure: place rows with a sample fit's models -> (xy, labels, strength)."""
    import warnings

    import hdbscan

    m2, mnd, hdb, mapping = models
    vectors = np.asarray(vectors, dtype=np.float32)
    if len(vectors) == 0:
        return np.zeros((0, 2), np.float32), np.zeros(0, np.int32), np.zeros(0, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xy = np.asarray(m2.transform(vectors), dtype=np.float32)
        xnd = np.asarray(mnd.transform(vectors), dtype=np.float64)
        raw, prob = hdbscan.approximate_predict(hdb, xnd)
    table = np.full(max(mapping, default=-1) + 2, NOISE, dtype=np.int32)  # raw id + 1 -> new id
    for old, new in mapping.items():
        table[old + 1] = new
    raw = np.asarray(raw, dtype=np.int64)
    labels = np.where(raw >= 0, table[np.clip(raw, -1, len(table) - 2) + 1], NOISE).astype(np.int32)
    return xy, labels, np.nan_to_num(np.asarray(prob, dtype=np.float32), nan=0.0)


def map_table(row_ids, xy, labels, strength, sampled):
    import pyarrow as pa

    xy = np.asarray(xy, dtype=np.float32).reshape(-1, 2)
    return pa.table({
        "sieve_row_id": pa.array(np.asarray(row_ids, dtype=np.int64)),
        "x": pa.array(xy[:, 0]), "y": pa.array(xy[:, 1]),
        "cluster": pa.array(np.asarray(labels, dtype=np.int32)),
        "strength": pa.array(np.asarray(strength, dtype=np.float32)),
        "sampled": pa.array(np.asarray(sampled, dtype=bool)),
    })


class _AssignShards:
    """Ray Data callable class: places the rows of vector shards with the sample fit."""

    def __init__(self, fit_path: str, threads: int = 1):
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(max(1, threads))
        except ImportError:  # pragma: no cover
            pass
        with open(fit_path, "rb") as fh:
            self.fit: SampleFit = pickle.load(fh)

    def __call__(self, batch: dict) -> dict:
        import pyarrow.parquet as pq

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
        return parquet_glob(self.folder, "map")


def scale_map(ws: Workspace, embed_dir: Path | str | None = None,
              params: ScaleMapParams = ScaleMapParams(), *, local: bool = False) -> ScaleMapResult:
    """Fit on a seeded sample (driver), then place every row on Ray (``map-*.parquet``;
    ``local=True``: in this process, without Ray).  The clusters are named from the
    sample's texts (``labels.json``) and counted over every row."""
    from core.stages.dataset import current_dataset
    from core.store.workspace import fetch_arrow

    t0 = time.perf_counter()
    info = current_dataset(ws)
    embed_dir = Path(embed_dir) if embed_dir is not None else embed_folder(ws)
    emeta = json.loads((embed_dir / "_meta.json").read_text())
    key = stage_key("scale_map", {"params": params.to_dict(), "version": STAGE_VERSION}, emeta["key"])
    folder = _shards_root(ws) / "map" / key
    folder.mkdir(parents=True, exist_ok=True)
    shards = emeta["shards"]
    timings: dict[str, float] = {}
    fit_path = folder / "fit.pkl"
    vecs = None
    if fit_path.is_file():
        with open(fit_path, "rb") as fh:
            fit = pickle.load(fh)
    else:
        con = _duck()
        try:
            ids = fetch_arrow(con, f"SELECT sieve_row_id FROM read_parquet({_sql_str(parquet_glob(embed_dir, 'vec'))})"
                              ).column(0).to_numpy().astype(np.int64)
        finally:
            con.close()
        sample = sample_row_ids(ids, params.sample_size, params.sample_seed)
        sample_ids, vecs = load_vectors(embed_dir, sample)
        t1 = time.perf_counter()
        fit = fit_sample(sample_ids, vecs, params.project, params.cluster,
                         transformable=len(sample_ids) < len(ids))
        timings["fit"] = round(time.perf_counter() - t1, 3)
        with atomic_path(fit_path) as tmp, open(tmp, "wb") as fh:
            pickle.dump(fit, fh, protocol=pickle.HIGHEST_PROTOCOL)
    todo = [s for s in shards if not (folder / f"map-{s}.parquet").is_file()]
    t2 = time.perf_counter()
    if todo:
        n_workers, _, cpus = (1, 0.0, 1.0) if local else plan_workers(params.workers, "cpu")
        items = [{"input": str(embed_dir / f"vec-{s}.parquet"), "output": str(folder / f"map-{s}.parquet")}
                 for s in todo]
        run_shard_jobs(_AssignShards, items, dict(fit_path=str(fit_path), threads=int(cpus)),
                       workers=n_workers, cpus=cpus, local=local)
        missing = [it["output"] for it in items if not Path(it["output"]).is_file()]
        if missing:
            raise SieveError(f"{len(missing)} map shard(s) were not written; run again to resume")
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


def map_folder(ws: Workspace) -> tuple[Path, Path]:
    """(map folder, embed folder) of the latest sharded map of the current dataset."""
    from core.stages.dataset import current_dataset

    rec = ws.get_meta(f"{META_SCALE}:map")
    if not rec or rec["dataset"] != current_dataset(ws).key:
        raise SieveError(f"workspace {ws.root} has no sharded map of the current dataset; "
                         "run `sieve scale map` first")
    return Path(rec["folder"]), Path(rec["embed_folder"])


def _cluster_names(ws: Workspace, folder: Path, embed_dir: Path, fit: SampleFit,
                   vecs: np.ndarray | None) -> list[dict]:
    """Each cluster's name and keywords (c-TF-IDF of the sample's texts, core.stages.naming) and its
    size over every row; cached in ``labels.json`` beside the map shards."""
    from .explore import fetch_rows
    from core.stages.naming import label_clusters

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
    con = _duck()
    try:
        sizes = _cluster_sizes(con, f"read_parquet({_sql_str(parquet_glob(folder, 'map'))})")
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
    from core.store.workspace import fetch_arrow

    con = _duck()
    try:
        cols = ", ".join(columns)
        return fetch_arrow(con, f"SELECT {cols} FROM read_parquet({_sql_str(parquet_glob(map_dir, 'map'))}) "
                                "ORDER BY sieve_row_id")
    finally:
        con.close()


# -- what the app calls: draw a sample, apply a lasso to every row -----------------------------


def draw_points(map_dir: Path | str, max_points: int = 100_000, seed: int = 0):
    """At most ``max_points`` rows to draw (sieve_row_id, x, y, cluster): every cluster keeps
    a share (core.explore.draw_sample's rule) computed from the per-cluster counts; the
    rows inside a cluster are a seeded hash sample, chosen by DuckDB over the shards."""
    import pyarrow as pa

    from .selection import allocate
    from core.store.workspace import fetch_arrow

    src = f"read_parquet({_sql_str(parquet_glob(map_dir, 'map'))})"
    con = _duck()
    try:
        counts = _cluster_sizes(con, src)
        n = int(sum(counts.values()))
        if n <= max_points:
            return fetch_arrow(con, f"SELECT sieve_row_id, x, y, cluster FROM {src} ORDER BY sieve_row_id")
        floor = min(200, max_points // max(len(counts), 1))
        alloc = allocate(counts, int(max_points), "proportional", lower={c: min(v, floor) for c, v in counts.items()})
        con.register("quota", pa.table({"cluster": pa.array(list(alloc.counts), pa.int32()),
                                        "k": pa.array(list(alloc.counts.values()), pa.int64())}))
        # rank rows inside each cluster by a seeded mix of the row id (splitmix-style, in SQL)
        return fetch_arrow(con, f"""
            SELECT sieve_row_id, x, y, cluster FROM (
              SELECT m.*, q.k, row_number() OVER (PARTITION BY m.cluster ORDER BY
                ((m.sieve_row_id * 2654435761 + {int(seed) * 97 + 1}) % 4294967291), m.sieve_row_id) AS r
              FROM {src} m JOIN quota q USING (cluster)) WHERE r <= k ORDER BY sieve_row_id""")
    finally:
        con.close()


def lasso_row_ids(map_dir: Path | str, xs: Sequence[float], ys: Sequence[float],
                  batch_rows: int = 1_000_000) -> np.ndarray:
    """Row ids of every mapped row inside the lasso polygon (server side, all rows): DuckDB
    keeps the rows inside the polygon's bounding box, and the exact test runs on them."""
    from .explore import points_in_lasso

    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    if len(xs) < 3:
        return np.zeros(0, np.int64)
    src = f"read_parquet({_sql_str(parquet_glob(map_dir, 'map'))})"
    con = _duck()
    out = []
    try:
        rel = con.sql(f"SELECT sieve_row_id, x, y FROM {src} WHERE x BETWEEN $1 AND $2 AND y BETWEEN $3 AND $4 "
                      "ORDER BY sieve_row_id",
                      params=[float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max())])
        reader = (rel.to_arrow_reader(batch_rows) if hasattr(rel, "to_arrow_reader")
                  else rel.fetch_record_batch(batch_rows))
        for b in reader:
            ids = b.column(0).to_numpy().astype(np.int64)
            xy = np.column_stack([b.column(1).to_numpy(), b.column(2).to_numpy()])
            out.append(ids[points_in_lasso(xy, xs, ys)])
    finally:
        con.close()
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def event_row_ids(map_dir: Path | str, event) -> tuple[np.ndarray, str]:
    """A plotly selection event on a drawn sample of the map -> (row ids, how): every row
    inside its boxes and lassos (all rows, drawn or not, via :func:`lasso_row_ids`), or
    the clicked points (``customdata`` holds row ids) when it has no shape."""
    from .explore import _as_selection, event_point_ids, event_shapes

    sel = _as_selection(event)
    boxes, lassos = event_shapes(sel)
    parts = [lasso_row_ids(map_dir, [x0, x1, x1, x0], [y0, y0, y1, y1]) for x0, x1, y0, y1 in boxes]
    parts += [lasso_row_ids(map_dir, lx, ly) for lx, ly in lassos]
    if sel.get("box") or sel.get("lasso"):
        how = "box" if sel.get("box") else "lasso"
    else:
        how = "points"
        parts.append(np.asarray(event_point_ids(sel), dtype=np.int64))
    ids = np.unique(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, np.int64)
    return ids, how if len(ids) else "none"


# -- 3. selection at scale --------------------------------------------------------------------

_UNSUPPORTED = (("dedup", "none"), ("budget_unit", "rows"), ("strata_column", None), ("reference_path", None),
                ("soft_noise_threshold", None), ("score_column", None))


@dataclass
class ScaleSelection:
    row_ids: np.ndarray
    clusters: np.ndarray
    ranks: np.ndarray
    reasons: list[str]
    allocation: dict[int, int]
    sizes: dict[int, int]
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.row_ids)


def check_select_params(params) -> None:
    for name, ok in _UNSUPPORTED:
        if getattr(params, name) != ok:
            raise SieveError(f"{name}={getattr(params, name)!r} is not supported by the Ray engine yet; "
                             "use the local engine for it")
    if params.pick not in engine_picks("ray"):
        raise SieveError(f"pick={params.pick!r} is not supported by the Ray engine yet; use the local engine for it")


def count_by_cluster(map_dir: Path | str, row_ids: Sequence[int]) -> dict[int, int]:
    """{cluster: how many of ``row_ids``} by DuckDB over the map shards (ids not on the map are not counted)."""
    con = _duck()
    try:
        return _cluster_sizes(con, f"read_parquet({_sql_str(parquet_glob(map_dir, 'map'))})", row_ids)
    finally:
        con.close()


def cluster_counts(map_dir: Path | str, pins: Sequence[int] = (), bans: Sequence[int] = ()):
    """({cluster: rows}, {cluster: banned rows}, {cluster: pinned rows}) by DuckDB over the map shards."""
    src = f"read_parquet({_sql_str(parquet_glob(map_dir, 'map'))})"
    con = _duck()
    try:
        total = _cluster_sizes(con, src)
        out = []
        for name, ids in (("bans", bans), ("pins", pins)):
            ids = np.asarray(ids, dtype=np.int64)
            counts = _cluster_sizes(con, src, ids)
            found = int(sum(counts.values()))
            if found != len(np.unique(ids)):
                raise SieveError(f"{name}: {len(np.unique(ids)) - found} row id(s) are not on the map")
            out.append(counts)
    finally:
        con.close()
    return total, out[0], out[1]


def _pick_cluster(map_dir: str, embed_dir: str, cluster_id: int, k: int, params_dict: dict,
                  need_vectors: bool) -> dict:
    """One cluster's picks: :func:`core.select.select` on that cluster's rows alone."""
    from .selection import SelectParams, select
    from core.store.workspace import fetch_arrow

    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover
        pass
    con = _duck()
    try:
        src = f"read_parquet({_sql_str(parquet_glob(map_dir, 'map'))})"
        if need_vectors:
            # only the vector shards holding this cluster's rows (map-<range> pairs with vec-<range>)
            files = con.execute(f"SELECT DISTINCT filename FROM read_parquet({_sql_str(parquet_glob(map_dir, 'map'))}, "
                                f"filename = true) WHERE cluster = {int(cluster_id)}").fetchall()
            vec_files = sorted(str(Path(embed_dir) / ("vec-" + Path(f).name[len("map-"):])) for (f,) in files)
            listing = "[" + ", ".join(_sql_str(f) for f in vec_files) + "]"
            tbl = fetch_arrow(con, f"SELECT m.sieve_row_id, v.vector FROM {src} m JOIN "
                                   f"read_parquet({listing}) v USING (sieve_row_id) "
                                   f"WHERE m.cluster = {int(cluster_id)} ORDER BY m.sieve_row_id")
            vectors = arrow_vectors(tbl.column(1))
        else:
            tbl = fetch_arrow(con, f"SELECT sieve_row_id FROM {src} WHERE cluster = {int(cluster_id)} "
                                   "ORDER BY sieve_row_id")
            vectors = None
    finally:
        con.close()
    ids = tbl.column(0).to_numpy().astype(np.int64)
    d = dict(params_dict)
    members = set(ids.tolist())
    d.update(budget=int(k), min_per_cluster=0, max_per_cluster=None, overrides={}, bounds={}, noise="include",
             pins=[p for p in d.get("pins", []) if p in members], bans=[b for b in d.get("bans", []) if b in members])
    sel = select(np.full(len(ids), int(cluster_id), np.int32), ids, SelectParams.from_dict(d), vectors=vectors)
    return {"cluster": int(cluster_id), "row_ids": sel.row_ids.astype(np.int64), "ranks": sel.ranks.astype(np.int32),
            "reasons": list(sel.reasons)}


def scale_select(map_dir: Path | str, embed_dir: Path | str, params, *, local: bool = False) -> ScaleSelection:
    """Allocate ``params.budget`` on per-cluster counts, then pick inside every cluster in
    parallel on Ray (``local=True``: in this process, for tests and small maps)."""
    from .selection import VECTOR_PICKS, allocate, group_bounds

    check_select_params(params)
    total, banned, pinned = cluster_counts(map_dir, params.pins, params.bans)
    n = sum(total.values())
    if params.budget > n:
        raise SieveError(f"budget={params.budget} is larger than the {n} rows on the map")
    sizes = {c: total[c] - banned.get(c, 0) for c in sorted(total)}
    lower, upper, fixed = group_bounds(sizes, params, {c: pinned.get(c, 0) for c in sizes})
    alloc = allocate(sizes, params.budget, params.policy, lower=lower, upper=upper, fixed=fixed,
                     weights_from=total, unit=params.unit)
    need_vectors = params.pick in VECTOR_PICKS
    pd = params.to_dict()
    jobs = [(c, k) for c, k in sorted(alloc.counts.items()) if k > 0]
    args = [(str(map_dir), str(embed_dir), c, k, pd, need_vectors) for c, k in jobs]
    if local:
        parts = [_pick_cluster(*a) for a in args]
    else:
        ray = _require_ray()
        task = ray.remote(num_cpus=1, max_retries=3)(_pick_cluster)
        parts = ray.get([task.remote(*a) for a in args])
    parts.sort(key=lambda p: p["cluster"])
    empty = np.zeros(0, np.int64)
    return ScaleSelection(
        row_ids=np.concatenate([p["row_ids"] for p in parts]) if parts else empty,
        clusters=np.concatenate([np.full(len(p["row_ids"]), p["cluster"], np.int32) for p in parts]) if parts
        else empty.astype(np.int32),
        ranks=np.concatenate([p["ranks"] for p in parts]) if parts else empty.astype(np.int32),
        reasons=[r for p in parts for r in p["reasons"]],
        allocation={int(c): int(v) for c, v in alloc.counts.items()},
        sizes={int(c): int(v) for c, v in total.items()},
        notes=list(alloc.notes),
    )


def export_scaled(ws: Workspace, selection: ScaleSelection, out_dir: Path | str, *, rows_per_file: int = 1_000_000,
                  keep_text: bool = False) -> list[Path]:
    """The chosen rows (every original column + sieve_cluster_id, sieve_rank, sieve_reason)
    as ``part-00000.parquet``... in ``out_dir``, written as a whole folder (temp, then rename)."""
    import pyarrow as pa

    from core.store.workspace import DATASET_TABLE

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


def build_scaled_manifest(ws: Workspace, embed_dir: Path, map_dir: Path, params, selection: ScaleSelection,
                          export: dict | None = None) -> dict:
    from core.stages.export import MANIFEST_VERSION, ids_digest, library_versions
    from core.stages.dataset import current_dataset
    from core.store.artifacts import SCHEMA_VERSION

    ds = current_dataset(ws)
    emeta = json.loads((Path(embed_dir) / "_meta.json").read_text())
    mmeta = json.loads((Path(map_dir) / "_meta.json").read_text())
    ep = emeta["params"]
    mp = mmeta["params"]
    chosen = ({int(c): int(n) for c, n in zip(*np.unique(selection.clusters, return_counts=True))}
              if len(selection) else {})
    return {
        "manifest_version": MANIFEST_VERSION,
        "schema_version": SCHEMA_VERSION,
        "engine": "ray",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "dataset": {"sources": ds.sources, "fingerprint": ds.fingerprint, "key": ds.key, "n_rows": ds.n_rows,
                    "n_empty": ds.n_empty, "n_duplicates": ds.n_duplicates,
                    "text": {"column": ds.text.column, "template": ds.text.template},
                    "vector_column": ds.vector_column, "delimiter": ds.delimiter, "encoding": ds.encoding},
        "model": {"id": emeta["model_id"], "dim": emeta["dim"],
                  "params": {"model": ep["model"], "batch_size": ep["batch_size"], "device": ep["device"],
                             "normalize": ep["normalize"], "backend": ep.get("backend", "torch")}},
        "project": {"params": mp["project"], "key": mmeta["key"]},
        "cluster": {"params": mp["cluster"], "resolved": mmeta.get("resolved_cluster"),
                    "n_clusters": mmeta["n_clusters"]},
        "scale": {"engine": "ray", "shard_rows": ep["shard_rows"], "sample_size": mp["sample_size"],
                  "sample_seed": mp["sample_seed"], "n_sample": mmeta["n_sample"], "embed_folder": str(embed_dir),
                  "map_folder": str(map_dir), "embed_key": emeta["key"], "map_key": mmeta["key"]},
        "select": params.to_dict(),
        "budget_unit": params.budget_unit,
        "clusters": [{"id": c, "size": s, "budget": selection.allocation.get(c, 0), "selected": chosen.get(c, 0)}
                     for c, s in sorted(selection.sizes.items())],
        "notes": list(mmeta.get("notes", [])) + list(selection.notes),
        "versions": library_versions(),
        "export": export or {},
        "n_selected": int(len(selection)),
        "selected_ids_sha256": ids_digest(selection.row_ids),
        "selected_row_ids": sorted(int(x) for x in selection.row_ids),
    }


def reproduce_scaled(ws: Workspace, manifest: dict, data: str | None = None, *, allow_changed_data: bool = False,
                     encoder_factory: Callable | None = None, workers: int | None = None,
                     local_picks: bool = False) -> tuple[ScaleSelection, Path, Path]:
    """Re-run a sharded manifest: ingest, sharded embed, the same seeded sample fit and
    assignment, and the selection.  Returns (selection, embed folder, map folder)."""
    from core.stages.ingest import IngestParams, ingest
    from core.stages.dataset import TextSpec
    from .selection import SelectParams

    ds = manifest["dataset"]
    source = data if data is not None else tuple(ds["sources"])
    info, _ = ingest(ws, IngestParams(source, TextSpec(**ds["text"]), ds.get("vector_column"),
                                    delimiter=ds.get("delimiter"), encoding=ds.get("encoding")))
    if info.fingerprint != ds["fingerprint"] and not allow_changed_data:
        raise SieveError(f"data {info.sources[0]} differs from the data the manifest was made from "
                         f"(fingerprint {info.fingerprint[:12]} vs {ds['fingerprint'][:12]}); pass the original files")
    sc = manifest["scale"]
    mp = manifest["model"]["params"]
    emb = embed_shards(ws, ScaleEmbedParams(model=mp["model"], batch_size=mp["batch_size"], device=mp["device"],
                                            normalize=mp["normalize"], shard_rows=int(sc["shard_rows"]),
                                            backend=mp.get("backend", "torch"),
                                            workers=workers), encoder_factory=encoder_factory)
    mparams = ScaleMapParams(int(sc["sample_size"]), int(sc["sample_seed"]),
                             _params_from(ProjectParams, manifest["project"]["params"]),
                             _params_from(ClusterParams, manifest["cluster"]["params"]), workers)
    mres = scale_map(ws, emb.folder, mparams)
    sel = scale_select(mres.folder, emb.folder, SelectParams.from_dict(manifest["select"]), local=local_picks)
    return sel, emb.folder, mres.folder


__all__ = [
    "ENGINES", "ScaleEmbedParams", "ScaleMapParams", "connect", "plan_workers", "resolve_cluster_backend", "input_shards", "embed_shards",
    "embed_folder", "load_vectors", "sample_row_ids", "fit_sample", "assign", "scale_map", "map_folder",
    "scaled_map_info", "run_shard_jobs", "load_scaled_map", "draw_points", "lasso_row_ids", "event_row_ids", "count_by_cluster", "cluster_counts", "scale_select", "export_scaled",
    "build_scaled_manifest", "reproduce_scaled",
]
