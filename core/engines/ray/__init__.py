"""The Ray engine: embed, map and select corpora too large for one machine.

The single-machine engine (:mod:`core.engines.local`) stays the default; this package is
the optional ``sieve[ray]`` path.  Everything is kept as Parquet *shards* under the
workspace, one file per range of row ids, so DuckDB reads a whole folder with
``read_parquet('dir/*.parquet')`` and nothing is ever copied into one file.

* :mod:`.cluster`: start or join a Ray cluster, size the workers, run shard jobs.
* :mod:`.shards`: shard I/O (input text shards, vector shards, DuckDB over folders).
* :mod:`.embed`: :func:`embed_shards`, every shard embedded on a Ray Data actor pool
  (resumable: a shard file exists whole or not at all).
* :mod:`.fit` and :mod:`.map`: :func:`scale_map` fits UMAP + HDBSCAN on a seeded sample,
  then places every other row in parallel (``map-*.parquet``).  When the sample covers
  every row the local :func:`core.stages.project.project` and :func:`core.stages.cluster.cluster` are
  used, so the result is the local map's.
* :mod:`.select`: :func:`scale_select` allocates on per-cluster counts, then picks inside
  each cluster in parallel; it returns the local engine's :class:`core.selection.Selection`.
* :mod:`.export`: Parquet part files and the manifest (:mod:`core.manifest`);
  :func:`reproduce_scaled` rebuilds it.
* :mod:`.view`: what the At-scale page draws and lassos.
* :mod:`.engine`: :class:`RayEngine`, the :class:`core.engines.base.Engine` of this package.

Only these stay on the driver: the sample fit, the per-cluster counts and the
allocation, and the final list of chosen row ids.  Ray is imported lazily; importing
this package does not need it.  This module is the package's public interface.
"""

from core.engines.ray.cluster import connect, plan_workers, require_ray, resolve_cluster_backend, run_shard_jobs
from core.engines.ray.embed import ScaleEmbedParams, ScaleEmbedResult, embed_folder, embed_key, embed_shards
from core.engines.ray.engine import RayEngine, ShardedMap
from core.engines.ray.export import export_scaled, ray_manifest, reproduce_scaled
from core.engines.ray.fit import SampleFit, assign, fit_sample, map_table, sample_row_ids
from core.engines.ray.map import ScaleMapParams, ScaleMapResult, load_scaled_map, map_folder, scale_map, scaled_map_info
from core.engines.ray.select import check_select_params, cluster_counts, count_by_cluster, pick_cluster, scale_select
from core.engines.ray.shards import (arrow_vectors, input_shards, load_vectors, parquet_glob, shard_name, vector_table,
                                     write_parquet_atomic)
from core.engines.ray.view import draw_points, event_row_ids, lasso_row_ids

__all__ = [
    "connect", "plan_workers", "require_ray", "resolve_cluster_backend", "run_shard_jobs",
    "ScaleEmbedParams", "ScaleEmbedResult", "embed_folder", "embed_key", "embed_shards",
    "RayEngine", "ShardedMap", "export_scaled", "ray_manifest", "reproduce_scaled",
    "SampleFit", "assign", "fit_sample", "map_table", "sample_row_ids",
    "ScaleMapParams", "ScaleMapResult", "load_scaled_map", "map_folder", "scale_map", "scaled_map_info",
    "check_select_params", "cluster_counts", "count_by_cluster", "pick_cluster",
    "scale_select", "arrow_vectors", "input_shards", "load_vectors", "parquet_glob", "shard_name", "vector_table",
    "write_parquet_atomic", "draw_points", "event_row_ids", "lasso_row_ids",
]
