"""Commands over the dataset and its map: ingest, embed, map, search, curate, info, app."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import typer

from core.store.workspace import SieveError, Workspace

from .. import queries, workflows
from ..curate import read_edits
from ..search import embed_query, nearest, query_encoder
from ..workflow_types import LOCAL, RAY
from .console import err, fail, note, progress
from .options import EMBED, INGEST, LONG_TEXT, MAP, RAY_OPTS, WORKSPACE, Opt, pick, with_options
from .parse import embed_params, ingest_params, map_params
from .printing import print_clusters, print_dataset

DEFAULT_MODEL = EMBED["model"].default
EMBED_ENGINE = Opt("engine", str, LOCAL,
                   help="local (this process) or ray (Parquet shards on a Ray cluster).")


@with_options(INGEST, [WORKSPACE])
def ingest(o: SimpleNamespace) -> None:
    """Load a dataset into the workspace."""
    ws = Workspace(o.workspace)
    info, cached = workflows.ingest(ws, ingest_params(o, o.fmt))
    print_dataset(info, cached)
    msg = workflows.dataset_long_text_note(ws, info, DEFAULT_MODEL)  # with the default model's tokenizer
    if msg:
        note(f"{msg} ({DEFAULT_MODEL})")


@with_options(EMBED, [EMBED_ENGINE], pick(RAY_OPTS, "address", "workers", "shard_rows"), [LONG_TEXT, WORKSPACE])
def embed(o: SimpleNamespace) -> None:
    """Embed the current dataset (cached by model and text; resumable)."""
    ws = Workspace(o.workspace)
    engine = workflows.resolve_engine(o.engine, address=o.address, workers=o.workers, shard_rows=o.shard_rows)
    if o.engine == RAY:
        res = workflows.embed(ws, embed_params(o), engine=engine)
        err.print(f"embeddings: {res.n_rows} x {res.dim} from {res.model_id} in {res.n_shards} shard(s) "
                  f"({res.n_computed} computed, {res.n_skipped} already done) at {res.glob}")
        return
    with progress() as events:
        res = workflows.embed(ws, embed_params(o), engine=engine, events=events)
    err.print(f"embeddings: {res.n_rows} x {res.dim} from {res.model_id}"
              + (" (cached)" if res.cached else f", {res.n_computed} computed"), markup=False, highlight=False)
    note(res.long_text_message(o.long_text))


@with_options(EMBED, MAP, [WORKSPACE])
def map_(o: SimpleNamespace) -> None:
    """Embed (if needed), project, cluster and label the current dataset."""
    ws = Workspace(o.workspace)
    params = map_params(o, o.seed)
    with progress() as events:
        data = workflows.build_map(ws, params, edits_path=o.edits, events=events)
    note(workflows.embedded_long_text_note(ws, data.keys.embed, o.long_text))
    print_clusters(data)


def _search_lines(ws: Workspace, data, positions, sims, width: int) -> list[str]:
    text_of = dict(zip(*queries.texts(ws)))
    names = data.cluster_names
    lines = ["row_id\tsimilarity\tcluster\ttext"]
    for rid, sim, pos in zip(data.row_ids[positions].tolist(), sims.tolist(), positions.tolist()):
        text = " ".join(str(text_of.get(rid, "")).split())
        if width and len(text) > width:
            text = text[: max(1, width - 1)] + "…"
        cname = " ".join(names.get(int(data.labels[pos]), "").split())
        lines.append(f"{rid}\t{sim:.4f}\t{int(data.labels[pos])}: {cname}\t{text}")
    return lines


def search(
    query: Optional[str] = typer.Argument(None, help="What to look for, in words (embedded with the map's model)."),
    k: int = typer.Option(10, "-k", "--k", help="How many rows to list."),
    row: Optional[int] = typer.Option(None, "--row", help="More like this: search from this row id's own vector "
                                                          "instead of a query."),
    width: int = typer.Option(100, help="Characters of text shown per row (0: the whole text)."),
    workspace: Path = WORKSPACE.info(),
):
    """Search the current map by meaning: the rows nearest the query (cosine), as plain text."""
    if (query is None) == (row is None):
        raise SieveError("give a QUERY or --row ROW_ID (not both)")
    ws = Workspace(workspace)
    data = workflows.current_map(ws)
    t0 = time.perf_counter()
    if row is not None:
        pos = data.positions([row])[0] if len(data.row_ids) else 0
        if pos >= len(data.row_ids) or int(data.row_ids[pos]) != row:
            raise SieveError(f"--row {row} is not on the map (rows with an empty text are not embedded)")
        qvec = data.vectors[pos]
    else:
        qvec = embed_query(query_encoder(data.keys.model_id, data.params.embed if data.params else None), query)
    t1 = time.perf_counter()
    positions, sims = nearest(data.vectors, qvec, k)
    t2 = time.perf_counter()
    lines = _search_lines(ws, data, positions, sims, width)
    sys.stdout.write("\n".join(lines) + "\n")  # plain text: data is never read as markup
    err.print(f"{len(positions)} row(s) of {len(data.row_ids)}; query embedded in {t1 - t0:.3f} s, "
              f"searched in {t2 - t1:.3f} s", highlight=False, markup=False)


def curate(
    edits: Optional[Path] = typer.Argument(None, help="A JSON file: a list of edits, e.g. "
                                           '[{"op":"rename","cluster":3,"name":"refunds"},'
                                           '{"op":"merge","clusters":[1,4]},{"op":"split","cluster":2,"k":2}].'),
    append: bool = typer.Option(False, "--append", help="Add the file's edits after the map's current ones "
                                                        "(default: the file replaces them)."),
    clear: bool = typer.Option(False, "--clear", help="Drop every edit: back to the clusters HDBSCAN found."),
    workspace: Path = WORKSPACE.info(),
):
    """Rename, merge or split clusters of the current map (edits replay in `reproduce`)."""
    if (edits is None) == (not clear):
        raise SieveError("give an edits file, or --clear (not both)")
    ws = Workspace(workspace)
    queries.map_record(ws)  # no map: say so before reading the edits file
    new = [] if clear else read_edits(edits)
    with workflows.naming_edits_file(edits):
        data = queries.map_data(ws, workflows.edit_clusters(ws, new, append=append))
    print_clusters(data)
    err.print(f"{len(data.edits)} edit(s) apply to this map" + ("; run `sieve select` again" if data.edits else ""))


def info(workspace: Path = WORKSPACE.info()):
    """What the workspace holds."""
    ws = Workspace(workspace)
    print_dataset(queries.dataset(ws), False)
    m = ws.get_meta("map")
    if m:
        err.print(f"map: model {m['keys']['model_id']}, keys {m['keys']}")
    s = ws.get_meta("selection")
    if s:
        err.print(f"selection: budget {s['budget']}, policy {s['policy']}, pick {s['pick']}, seed {s['seed']}")


def app_(port: int = typer.Option(8501), workspace: Path = WORKSPACE.info()):
    """Open the Streamlit app."""
    app_py = Path(__file__).resolve().parents[2] / "app.py"
    if not app_py.is_file():
        fail(SieveError(f"app.py not found next to the core package ({app_py}); run from a source checkout"))
    env = dict(os.environ, SIEVE_WORKSPACE=str(workspace))
    raise typer.Exit(subprocess.call([sys.executable, "-m", "streamlit", "run", str(app_py),
                                      "--server.port", str(port)], env=env))
