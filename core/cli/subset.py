"""Commands that choose and write a subset: select, export, run, reproduce, verify."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import typer

from core.store.workspace import SieveError, Workspace

from .. import workflows
from ..workflow_types import LOCAL, RAY, Events, ExportTarget
from .console import err, note, progress
from .options import DEPTH_OPTS, EMBED, EXPORT, INGEST, MAP, RAY_OPTS, SELECT_OPTS, WORKSPACE, Opt, with_options
from .parse import ingest_params, map_params, select_params
from .printing import print_clusters, print_reproduced, print_selection, print_step

MANIFEST_HELP = "A manifest written by `sieve export` or `sieve run`."
RUN_INPUT = [*INGEST.values()][:4] + [INGEST["fmt"].but(name="fmt_in", flags=("--input-format",), help=None),
                                       INGEST["delimiter"], INGEST["encoding"]]
RUN_MAP = [o.but(name="map_seed") if o.name == "seed" else o for o in MAP.values()]
RUN_EXPORT = [EXPORT["out_path"].but(help="Output file (--engine ray: a new folder of Parquet shards)."),
              EXPORT["fmt"].but(help=None), EXPORT["manifest"].but(help=None), EXPORT["include_duplicates"]]
RUN_ENGINE = Opt("engine", str, LOCAL, help="local (this process) or ray (Parquet shards on a Ray "
                 "cluster: sharded embedding, a map fitted on a sample, per-cluster picks).")


def _target(o: SimpleNamespace, include_duplicates: bool = False) -> ExportTarget:
    """Where the CLI exports: --out resolved to an absolute path, --format, --manifest."""
    return ExportTarget(Path(o.out_path).expanduser().resolve(), o.fmt, o.manifest, include_duplicates)


@with_options(SELECT_OPTS, DEPTH_OPTS, [WORKSPACE])
def select_(o: SimpleNamespace) -> None:
    """Choose rows from the current map and remember the choice for `sieve export`."""
    ws = Workspace(o.workspace)
    params = select_params(o)
    data = workflows.current_map(ws)
    selection = workflows.select(ws, data, params)
    print_selection(data, selection, params, workflows.report(data, selection, params))


@with_options(EXPORT, [WORKSPACE])
def export(o: SimpleNamespace) -> None:
    """Export the last selection (from `sieve select`) and its manifest."""
    ws = Workspace(o.workspace)
    with ws.lock("export"):  # no ingest or map may change the dataset under the export
        params = workflows.saved_selection(ws)
        data = workflows.current_map(ws)
        selection = workflows.select(ws, data, params, remember=False)
        print_step("export", workflows.export(ws, data, params, selection, _target(o, o.include_duplicates)))


@with_options(RUN_INPUT, EMBED, RUN_MAP, SELECT_OPTS, DEPTH_OPTS, RUN_EXPORT, [RUN_ENGINE], RAY_OPTS, [WORKSPACE])
def run(o: SimpleNamespace) -> None:
    """Everything: ingest -> embed -> map -> select -> export."""
    target = _target(o, o.include_duplicates)
    engine = workflows.resolve_engine(o.engine, address=o.address, workers=o.workers, shard_rows=o.shard_rows,
                                      sample_size=o.sample_size, sample_seed=o.sample_seed, backend=o.backend)
    workflows.check_target(engine, target)  # fail fast on a bad output name
    ws = Workspace(o.workspace)
    ingest = ingest_params(o, o.fmt_in)
    mparams = map_params(o, o.map_seed)
    sparams = select_params(o)

    def on_step(name, value):
        if name == "map":
            note(workflows.embedded_long_text_note(ws, value.keys.embed, o.long_text))
            print_clusters(value)
        else:
            print_step(name, value)

    if o.engine == RAY:
        result = workflows.run(ws, ingest, mparams, sparams, target, engine=engine, edits_path=o.edits,
                               events=Events(on_step=on_step))
    else:
        with progress(on_step) as events:
            result = workflows.run(ws, ingest, mparams, sparams, target, engine=engine, edits_path=o.edits,
                                   events=events)
    err.print(f"done in {result.seconds:.1f} s")


@with_options([
    Opt("manifest_path", Path, ..., help=MANIFEST_HELP, argument=True),
    EXPORT["out_path"].but(help=None),
    Opt("data", Optional[str], None, help="The data, if not at the manifest's recorded path."),
    EXPORT["fmt"].but(help=None),
    EXPORT["manifest"].but(help="Where to write the new manifest."),
    WORKSPACE,
])
def reproduce(o: SimpleNamespace) -> None:
    """Rebuild the exact subset of a manifest; fails if the row ids differ."""
    ws = Workspace(o.workspace)
    target = _target(o)
    with progress(print_step) as events:
        exported = workflows.reproduce(ws, o.manifest_path, target, data=o.data, events=events)
    print_reproduced(exported)


def verify(manifest_path: Path = typer.Argument(..., help=MANIFEST_HELP)):
    """Check that the data file beside a manifest is the one it describes (sha256); exit 2 if not."""
    man, problem = workflows.verify(manifest_path)
    if problem:
        raise SieveError(problem)
    err.print(f"ok: {man.get('n_selected', '?')} rows; the data file matches manifest {manifest_path}",
              markup=False, highlight=False)
