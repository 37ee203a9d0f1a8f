"""``sieve scale map|select``: the Ray engine's map and selection (after ``sieve embed --engine ray``)."""

from __future__ import annotations

from types import SimpleNamespace

import typer

from core.stages.cluster import ClusterParams
from core.store.workspace import Workspace

from .. import workflows
from ..engines.local import MapParams
from ..workflow_types import RAY, Events, ExportTarget
from .console import err, guard
from .options import EXPORT, MAP, RAY_ADDRESS_HELP, RAY_OPTS, SELECT_OPTS, WORKSPACE, pick, with_options
from .parse import project_params, select_params
from .printing import print_step

scale_app = typer.Typer(no_args_is_help=True, help="Map and select at scale on Ray (after `sieve embed --engine ray`).")
ADDRESS = RAY_OPTS["address"].but(help=RAY_ADDRESS_HELP)


@scale_app.command("map")
@guard
@with_options([
    RAY_OPTS["sample_size"].but(help="Rows the UMAP/HDBSCAN fit sees; every other row is assigned."),
    RAY_OPTS["sample_seed"].but(help="Seed of the sample."),
    *pick(MAP, "n_neighbors", "min_dist", "metric", "dims", "seed"),
    MAP["min_cluster_size"].but(help="HDBSCAN min_cluster_size on the sample."), MAP["min_samples"],
    RAY_OPTS["workers"].but(help="Assignment workers (default: one per CPU)."),
    ADDRESS, WORKSPACE,
])
def scale_map_(o: SimpleNamespace) -> None:
    """Fit the map on a seeded sample, then place every row on Ray (map-*.parquet shards)."""
    ws = Workspace(o.workspace)
    params = MapParams(project=project_params(o, o.seed),
                       cluster=ClusterParams(min_cluster_size=o.min_cluster_size, min_samples=o.min_samples))
    engine = workflows.resolve_engine(RAY, address=o.address, sample_size=o.sample_size, sample_seed=o.sample_seed,
                                      workers=o.workers)
    steps = {}
    workflows.map_embeddings(ws, params, engine=engine, events=Events(on_step=steps.__setitem__))
    res = steps["scaled_map"][0]
    err.print(f"map: {res.n_rows} rows, {res.n_clusters} clusters fitted on {res.n_sample} sampled rows; "
              f"{res.n_computed} shard(s) placed, {res.n_skipped} already done; {res.glob}")


@scale_app.command("select")
@guard
@with_options([
    SELECT_OPTS["budget"].but(flags=(), help="Rows to select."),
    SELECT_OPTS["policy"], SELECT_OPTS["pick"].but(default="random", help=None),
    *pick(SELECT_OPTS, "seed", "noise", "min_per_cluster", "max_per_cluster"),
    SELECT_OPTS["override"].but(flags=(), help="CLUSTER=ROWS (repeatable)."),
    SELECT_OPTS["pin"], SELECT_OPTS["ban"],
    EXPORT["out_path"].but(help="Output folder for the Parquet shards (new or empty)."),
    EXPORT["manifest"], ADDRESS, WORKSPACE,
])
def scale_select_(o: SimpleNamespace) -> None:
    """Allocate on per-cluster counts, pick per cluster in parallel, export shards + manifest."""
    ws = Workspace(o.workspace)
    params = select_params(o)
    engine = workflows.resolve_engine(RAY, address=o.address)
    handle = workflows.current_map(ws, engine)
    sel = workflows.select(ws, handle, params, engine=engine)
    target = ExportTarget(o.out_path.expanduser().resolve(), manifest_path=o.manifest)
    print_step("export", workflows.export(ws, handle, params, sel, target, engine=engine))
