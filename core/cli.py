"""The ``sieve`` command line: the same core functions as the app, headless.

Errors are one line on stderr naming the file, column or parameter, exit code 2.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from .selection import DEFAULT_PICK, describe
from core.store.workspace import DEFAULT_WORKSPACE, SieveError, Workspace, database_error, is_damage

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Sieve: map a text dataset and pick a balanced, reproducible subset under per-cluster budgets.")


class PlainConsole(Console):
    """A rich Console that prints every string as plain text: no markup, no emoji codes,
    no highlighting, and control characters (ANSI escapes, NUL, carriage returns) shown
    as ``?``, so a file, column or cluster name can neither break nor restyle the terminal.
    Styles come only from :class:`rich.text.Text` objects built here."""

    def render_str(self, text: str, **kwargs) -> Text:
        kwargs.update(markup=False, emoji=False, highlight=False)
        return super().render_str(plain(text), **kwargs)


def plain(text: object) -> str:
    """``text`` with control characters other than newline and tab replaced by ``?``."""
    return _CONTROL.sub("?", str(text))


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
err = PlainConsole(stderr=True, markup=False, emoji=False, highlight=False)
out = PlainConsole(markup=False, emoji=False, highlight=False)

WS_OPT = typer.Option(DEFAULT_WORKSPACE, "--workspace", "-w", help="Workspace folder (DuckDB file + artifacts).")


# -- shared option groups ----------------------------------------------------------------


DELIMITER_HELP = "CSV/TSV delimiter: one character or comma, semicolon, pipe, tab (default: detected; tab for .tsv)."
ENCODING_HELP = "Encoding of CSV/TSV/JSON files, e.g. latin-1, cp1252, utf-16 (default: UTF-8; other bytes are refused)."


def _ingest_params(data, text, template, vectors, fmt, delimiter=None, encoding=None):
    from core.stages.ingest import IngestParams
    from core.stages.dataset import TextSpec, unescape_template

    if text is None and template is None:
        raise SieveError("give --text COLUMN or --template '{col1}\\n{col2}'")
    spec = TextSpec(column=text, template=unescape_template(template) if template is not None else None)
    return IngestParams(str(data), spec, vectors, fmt, delimiter=delimiter, encoding=encoding)


def _map_params(model, batch_size, device, n_neighbors, min_dist, metric, dims, min_cluster_size, min_samples, seed,
                exact=False, backend="auto", long_text="truncate", cluster_method="hdbscan"):
    from core.stages.cluster import ClusterParams
    from core.stages.embed import EmbedParams
    from .engines.local import MapParams
    from core.stages.project import ProjectParams

    return MapParams(
        EmbedParams(model=model, batch_size=batch_size, device=device, backend=backend,
                    long_text=long_text).resolved(),
        ProjectParams(n_neighbors=n_neighbors, min_dist=min_dist, metric=metric, cluster_dims=dims, seed=seed,
                      exact=exact),
        ClusterParams(min_cluster_size=min_cluster_size, min_samples=min_samples, algorithm=cluster_method),
    )


def _parse_overrides(items: list[str]) -> dict[int, int]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SieveError(f"--override {item!r} must look like CLUSTER=ROWS, e.g. 3=50")
        c, n = item.split("=", 1)
        try:
            out[int(c)] = int(n)
        except ValueError as exc:
            raise SieveError(f"--override {item!r} must look like CLUSTER=ROWS with whole numbers") from exc
    return out


def _parse_ids(text: Optional[str], what: str) -> tuple[int, ...]:
    """Row ids from ``--pin``/``--ban``: a file of ids when ``text`` names an existing file,
    else an inline list of any length (commas and/or spaces).  A bad token is named."""
    if not text:
        return ()
    try:
        is_file = Path(text).expanduser().is_file()
    except (OSError, ValueError):  # e.g. a 400-character inline list: "File name too long"
        is_file = False
    raw = Path(text).expanduser().read_text() if is_file else text
    where = f" in file {text}" if is_file else ""
    out = []
    for tok in raw.replace(",", " ").split():
        try:
            out.append(int(tok))
        except ValueError:
            raise SieveError(f"--{what}: {tok!r}{where} is not a row id; give whole numbers separated by commas "
                             "(or a file of them)") from None
    return tuple(out)


def _parse_strata_bounds(items: list[str]) -> dict[str, tuple[int | None, int | None]]:
    out = {}
    for item in items or []:
        if "=" not in item or ":" not in item.split("=", 1)[1]:
            raise SieveError(f"--strata-bound {item!r} must look like STRATUM=MIN:MAX (either may be empty), e.g. forum=:50")
        name, rng = item.rsplit("=", 1)
        lo, hi = rng.split(":", 1)
        try:
            out[name] = (int(lo) if lo.strip() else None, int(hi) if hi.strip() else None)
        except ValueError as exc:
            raise SieveError(f"--strata-bound {item!r}: MIN and MAX must be whole numbers") from exc
    return out


def _select_params(budget, policy, pick, seed, noise, min_per_cluster, max_per_cluster, override, score_column,
                   ascending, pin, ban, **depth):
    from .selection import SelectParams

    noise_v: str | int = noise
    if noise not in ("include", "exclude"):
        try:
            noise_v = int(noise)
        except ValueError as exc:
            raise SieveError(f"--noise must be include, exclude or a row budget, got {noise!r}") from exc
    extra = {}
    if depth:
        ref = depth.get("reference")
        extra = dict(
            dedup=depth["dedup"], near_dup_threshold=depth["near_dup"], mmr_lambda=depth["mmr_lambda"],
            soft_noise_threshold=depth["soft_noise"], budget_unit=depth["budget_unit"],
            tokenizer=depth["tokenizer"], strata_column=depth["strata"],
            strata_bounds=_parse_strata_bounds(depth.get("strata_bound") or []),
            reference_path=str(Path(ref).expanduser().resolve()) if ref else None,
            reference_text=depth["reference_text"], coverage_distance=depth["coverage_distance"],
            leakage=depth["leakage"] if ref else ("off" if depth["leakage"] == "warn" else depth["leakage"]),
            leakage_threshold=depth["leakage_threshold"],
            target_path=str(Path(depth["target"]).expanduser().resolve()) if depth.get("target") else None,
            target_text=depth.get("target_text") or "text",
        )
    return SelectParams(
        budget=budget, policy=policy, pick=pick, seed=seed, noise=noise_v, min_per_cluster=min_per_cluster,
        max_per_cluster=max_per_cluster, overrides=_parse_overrides(override), score_column=score_column,
        score_ascending=ascending, pins=_parse_ids(pin, "pin"), bans=_parse_ids(ban, "ban"), **extra,
    )


@contextlib.contextmanager
def _progress():
    """A rich progress display; yields (progress_cb, on_stage_cb) for core.pipeline."""
    bars: dict[str, int] = {}
    with Progress(TextColumn("{task.description}", style="bold", markup=False), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(),
                  TimeRemainingColumn(), console=err, transient=False) as prog:

        def progress(stage, done, total, msg):
            if stage not in bars:
                bars[stage] = prog.add_task(stage, total=max(total, 1))
            prog.update(bars[stage], completed=done, total=max(total, 1), description=plain(f"{stage}: {msg}"))

        def on_stage(stage, event, info):
            if event == "done":
                if stage not in bars:
                    bars[stage] = prog.add_task(stage, total=1)
                state = "cached" if info["cached"] else f"{info['seconds']:.1f} s"
                prog.update(bars[stage], completed=prog.tasks[bars[stage]].total, description=f"{stage}: {state}")

        yield progress, on_stage


def _fail(exc: BaseException) -> None:
    err.print(Text.assemble(("error:", "red"), " ", plain(exc)), soft_wrap=True)
    raise typer.Exit(2)


def _guard(fn):
    """Turn library errors into one line on stderr and a non-zero exit."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from core.stages.embed import Cancelled

        try:
            return fn(*args, **kwargs)
        except SieveError as exc:
            _fail(exc)
        except Cancelled as exc:
            err.print(f"cancelled: {exc}")
            raise typer.Exit(130)
        except KeyboardInterrupt:
            err.print("interrupted: finished chunks are kept; run the command again to resume")
            raise typer.Exit(130)
        except OSError as exc:
            _fail(SieveError(f"{exc.strerror or exc} ({exc.filename})" if exc.filename else str(exc)))
        except Exception as exc:  # a damaged workspace database surfaces in the middle of a query
            import duckdb

            if not isinstance(exc, duckdb.Error):
                raise
            if is_damage(exc):
                _fail(database_error(Workspace(kwargs.get("workspace") or DEFAULT_WORKSPACE).db_path, exc))
            _fail(SieveError(f"DuckDB error: {' '.join(str(exc).split())[:300]}"))

    return wrapper


# -- commands -----------------------------------------------------------------------------


@app.command()
@_guard
def ingest(
    data: str = typer.Argument(..., help="A file or glob: .csv .tsv .json .jsonl .parquet"),
    text: Optional[str] = typer.Option(None, "--text", "-t", help="Column holding the text."),
    template: Optional[str] = typer.Option(None, help="Text template over columns, e.g. '{instruction}\\n{input}'."),
    vectors: Optional[str] = typer.Option(None, help="Column of precomputed vectors (skips the model)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="csv, tsv, json, jsonl or parquet (default: extension)."),
    delimiter: Optional[str] = typer.Option(None, "--delimiter", help=DELIMITER_HELP),
    encoding: Optional[str] = typer.Option(None, "--encoding", help=ENCODING_HELP),
    workspace: Path = WS_OPT,
):
    """Load a dataset into the workspace."""
    from core.stages.ingest import ingest as do_ingest

    ws = Workspace(workspace)
    info, cached = do_ingest(ws, _ingest_params(data, text, template, vectors, fmt, delimiter, encoding))
    _print_dataset(info, cached)
    _print_long_texts_after_ingest(ws, info)


def _print_dataset(info, cached):
    state = " (already loaded)" if cached else ""
    read = f"; delimiter {info.delimiter!r}" if info.delimiter else ""
    read += f"; encoding {info.encoding}" if info.encoding else ""
    err.print(
        f"dataset{state}: {info.n_rows} rows, {info.n_empty} empty or blank text(s) excluded from embedding, "
        f"{info.n_duplicates} exact duplicate(s); text from {info.text.describe()}{read}", highlight=False, soft_wrap=True
    )


def _print_long_texts_after_ingest(ws, info, model: str = "all-MiniLM-L6-v2") -> None:
    """Texts over the (default) model's token limit, counted with its tokenizer."""
    from core.stages.long_texts import count_dataset

    if info.vector_column:
        return
    msg = count_dataset(ws, model).message()
    if msg:
        err.print(f"note: {msg} ({model})", markup=False, highlight=False)


def _print_long_texts(ws, embed_key: str, mode: str) -> None:
    """After embedding: how many texts were over the model's limit, and what was done."""
    from core.stages.embed import EmbedResult

    meta = ws.load_artifact("embed", embed_key)[1]
    res = EmbedResult(embed_key, meta["model_id"], meta["dim"], meta["n_rows"], 0, True, meta.get("long_texts"))
    msg = res.long_text_message(mode)
    if msg:
        err.print(f"note: {msg}", markup=False, highlight=False)


LONG_TEXT_OPT = typer.Option("truncate", "--long-text", help="Texts over the model's token limit: truncate (embed "
                             "the first max_seq_length tokens, as sentence-transformers does) or chunk (embed "
                             "overlapping windows and mean-pool them).")
BACKEND_HELP = ("auto (onnx-int8 on the CPU when onnxruntime is installed, else torch), torch (exact fp32; fp16 on "
                "CUDA), onnx-int8 (int8 ONNX Runtime, CPU, ~0.99 cosine to fp32) or static (fast preview).")


@app.command()
@_guard
def embed(
    model: str = typer.Option("all-MiniLM-L6-v2", help="sentence-transformers name or local path."),
    batch_size: int = typer.Option(64, help="Texts per batch."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps."),
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
    engine: str = typer.Option("local", help="local (this process) or ray (Parquet shards on a Ray cluster)."),
    address: Optional[str] = typer.Option(None, help="--engine ray: Ray cluster address (default: RAY_ADDRESS, "
                                          "else a local Ray instance)."),
    workers: Optional[int] = typer.Option(None, help="--engine ray: actors (default: one per GPU, else per CPU)."),
    shard_rows: int = typer.Option(50_000, help="--engine ray: row ids per shard (the unit of resume)."),
    long_text: str = LONG_TEXT_OPT,
    workspace: Path = WS_OPT,
):
    """Embed the current dataset (cached by model and text; resumable)."""
    from core.stages.embed import EmbedParams, run_embed

    ws = Workspace(workspace)
    if engine not in ("local", "ray"):
        raise SieveError(f"--engine must be local or ray, got {engine!r}")
    params = EmbedParams(model=model, batch_size=batch_size, device=device, backend=backend, long_text=long_text)
    if engine == "ray":
        from .engines import ray as scale

        if long_text != "truncate":
            raise SieveError("--long-text chunk is not available with --engine ray yet; use --engine local")
        if address:
            scale.connect(address)
        res = scale.embed_shards(ws, scale.ScaleEmbedParams(model=model, batch_size=batch_size, device=device,
                                                            shard_rows=shard_rows, workers=workers,
                                                            backend=backend))
        err.print(f"embeddings: {res.n_rows} x {res.dim} from {res.model_id} in {res.n_shards} shard(s) "
                  f"({res.n_computed} computed, {res.n_skipped} already done) at {res.glob}")
        return
    with _progress() as (progress, _):
        res = run_embed(ws, params, progress=lambda d, t, m: progress("embed", d, t, m))
    err.print(f"embeddings: {res.n_rows} x {res.dim} from {res.model_id}"
              + (" (cached)" if res.cached else f", {res.n_computed} computed"), markup=False, highlight=False)
    msg = res.long_text_message(long_text)
    if msg:
        err.print(f"note: {msg}", markup=False, highlight=False)


@contextlib.contextmanager
def _naming_edits_file(path):
    """An edit that does not apply (``edit 2 (merge): ...``) names the edits file it came from."""
    try:
        yield
    except SieveError as exc:
        if path is not None and str(exc).startswith("edit "):
            raise SieveError(f"edits file {path}: {exc}") from None
        raise


EDITS_OPT = typer.Option(None, "--edits", help="A JSON file of cluster edits (rename, merge, split) to apply "
                         "on top of the map, as `sieve curate` does.")
MODEL_OPT = typer.Option("all-MiniLM-L6-v2", help="sentence-transformers name or local path.")


EXACT_OPT = typer.Option(False, "--exact", help="Seeded single-threaded UMAP: bit-reproducible, slower "
                         "(default: parallel UMAP; exports then store the map next to the manifest).")


CLUSTER_METHOD_OPT = typer.Option(
    "hdbscan", "--cluster-method",
    help="hdbscan (on the UMAP n-D projection), plscan (fast_hdbscan's PLSCAN, same input), evoc (EVoC on the "
         "vectors) or leiden (Leiden communities of the kNN graph). See docs/SELECTION.md.")


@app.command("map")
@_guard
def map_(
    model: str = MODEL_OPT,
    batch_size: int = typer.Option(64),
    device: str = typer.Option("auto"),
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
    n_neighbors: int = typer.Option(15, help="UMAP n_neighbors."),
    min_dist: float = typer.Option(0.1, help="UMAP min_dist of the 2-D map."),
    metric: str = typer.Option("cosine", help="UMAP metric."),
    dims: int = typer.Option(5, help="Dimensions of the projection used for clustering."),
    min_cluster_size: Optional[int] = typer.Option(None, help="HDBSCAN min_cluster_size (default ~sqrt(n)/2)."),
    min_samples: Optional[int] = typer.Option(None, help="HDBSCAN min_samples (default min(10, min_cluster_size))."),
    seed: int = typer.Option(42, help="Seed of the projection."),
    exact: bool = EXACT_OPT,
    long_text: str = LONG_TEXT_OPT,
    edits: Optional[Path] = EDITS_OPT,
    cluster_method: str = CLUSTER_METHOD_OPT,
    workspace: Path = WS_OPT,
):
    """Embed (if needed), project, cluster and label the current dataset."""
    from .curate import read_edits
    from .engines.local import build_map, load_map

    ws = Workspace(workspace)
    params = _map_params(model, batch_size, device, n_neighbors, min_dist, metric, dims, min_cluster_size,
                         min_samples, seed, exact, backend, long_text, cluster_method)
    edit_list = read_edits(edits) if edits is not None else None  # a bad file fails before any work
    from core.stages.dataset import current_dataset

    _warm_up_large_map(current_dataset(ws).n_rows)
    with _progress() as (progress, on_stage), _naming_edits_file(edits):
        keys = build_map(ws, params, progress=progress, on_stage=on_stage, edits=edit_list)
    _print_long_texts(ws, keys.embed, long_text)
    _print_clusters(load_map(ws, keys))


@app.command()
@_guard
def search(
    query: Optional[str] = typer.Argument(None, help="What to look for, in words (embedded with the map's model)."),
    k: int = typer.Option(10, "-k", "--k", help="How many rows to list."),
    row: Optional[int] = typer.Option(None, "--row", help="More like this: search from this row id's own vector "
                                                          "instead of a query."),
    width: int = typer.Option(100, help="Characters of text shown per row (0: the whole text)."),
    workspace: Path = WS_OPT,
):
    """Search the current map by meaning: the rows nearest the query (cosine), as plain text."""
    from core.stages.dataset import load_texts
    from .engines.local import load_map
    from .search import embed_query, nearest, query_encoder

    if (query is None) == (row is None):
        raise SieveError("give a QUERY or --row ROW_ID (not both)")
    ws = Workspace(workspace)
    data = load_map(ws)
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
    ids = data.row_ids[positions]
    text_of = dict(zip(*load_texts(ws)[:2]))
    names = data.cluster_names
    lines = ["row_id\tsimilarity\tcluster\ttext"]
    for rid, sim, pos in zip(ids.tolist(), sims.tolist(), positions.tolist()):
        text = " ".join(str(text_of.get(rid, "")).split())
        if width and len(text) > width:
            text = text[: max(1, width - 1)] + "…"
        cname = " ".join(names.get(int(data.labels[pos]), "").split())
        lines.append(f"{rid}\t{sim:.4f}\t{int(data.labels[pos])}: {cname}\t{text}")
    sys.stdout.write("\n".join(lines) + "\n")  # plain text: data is never read as markup
    err.print(f"{len(ids)} row(s) of {len(data.row_ids)}; query embedded in {t1 - t0:.3f} s, "
              f"searched in {t2 - t1:.3f} s", highlight=False, markup=False)


@app.command()
@_guard
def curate(
    edits: Optional[Path] = typer.Argument(None, help="A JSON file: a list of edits, e.g. "
                                           '[{"op":"rename","cluster":3,"name":"refunds"},'
                                           '{"op":"merge","clusters":[1,4]},{"op":"split","cluster":2,"k":2}].'),
    append: bool = typer.Option(False, "--append", help="Add the file's edits after the map's current ones "
                                                        "(default: the file replaces them)."),
    clear: bool = typer.Option(False, "--clear", help="Drop every edit: back to the clusters HDBSCAN found."),
    workspace: Path = WS_OPT,
):
    """Rename, merge or split clusters of the current map (edits replay in `reproduce`)."""
    from .curate import read_edits, stored_edits
    from .engines.local import curate_map, current_map, load_map

    if (edits is None) == (not clear):
        raise SieveError("give an edits file, or --clear (not both)")
    ws = Workspace(workspace)
    keys, params = current_map(ws)
    new = [] if clear else read_edits(edits)
    if append:
        new = stored_edits(ws, keys.label) + new
    with _naming_edits_file(edits):
        data = load_map(ws, curate_map(ws, keys, new, params))
    _print_clusters(data)
    err.print(f"{len(data.edits)} edit(s) apply to this map" + ("; run `sieve select` again" if data.edits else ""))


def _warm_up_large_map(n_rows: int) -> None:
    """A map above EXACT_KNN_MAX_ROWS rows needs pynndescent, whose compilation (tens of
    seconds) no disk cache keeps: compile it in the background while the embedding runs
    (the projection waits for it).  SIEVE_NO_WARMUP=1 turns this off."""
    from core.stages.knn import EXACT_KNN_MAX_ROWS

    if n_rows > EXACT_KNN_MAX_ROWS and not os.environ.get("SIEVE_NO_WARMUP"):
        from core.stages.prewarm import start_background_warmup

        start_background_warmup()


def _print_clusters(data):
    t = Table(title=f"{len([c for c in data.clusters if c.id >= 0])} clusters", show_lines=False)
    for col in ("id", "name", "size", "keywords"):
        t.add_column(col)
    for c in data.clusters:
        t.add_row(str(c.id), escape(c.name), str(c.size), escape(", ".join(c.keywords[:6])))  # names may be typed
    err.print(t)
    for note in data.notes:
        err.print(f"note: {note}")


SELECT_OPTS = dict(
    budget=typer.Option(..., "--budget", "-b", help="Total rows (or tokens, with --budget-unit tokens) to select."),
    policy=typer.Option("equal", help="proportional, equal or sqrt."),
    pick=typer.Option(DEFAULT_PICK, help=f"How rows are picked inside a cluster. {describe()}."),
    seed=typer.Option(0, help="Seed of the pick."),
    noise=typer.Option("include", help="include, exclude, or a row budget for unclustered rows."),
    min_per_cluster=typer.Option(0, "--min", help="Floor per cluster."),
    max_per_cluster=typer.Option(None, "--max", help="Cap per cluster."),
    override=typer.Option(None, "--override", help="CLUSTER=ROWS, repeatable."),
    score_column=typer.Option(None, help="Numeric column for --pick score (or the relevance of --pick mmr)."),
    ascending=typer.Option(False, "--ascending", help="With --pick score: lowest first."),
    pin=typer.Option(None, help="Row ids always included (comma-separated, or a file)."),
    ban=typer.Option(None, help="Row ids never included (comma-separated, or a file)."),
)

DEPTH_OPTS = dict(
    dedup=typer.Option("none", "--dedup", help="none, exact (normalised text) or near (also embeddings within a "
                                               "cluster above --near-dup): one pick per duplicate group."),
    near_dup=typer.Option(0.95, "--near-dup", help="Cosine similarity that makes two rows near-duplicates."),
    mmr_lambda=typer.Option(0.5, "--mmr-lambda", help="With --pick mmr: 1 = most relevant, 0 = most novel."),
    soft_noise=typer.Option(None, "--soft-noise",
                            help="Unclustered rows with HDBSCAN soft membership >= this join their cluster."),
    budget_unit=typer.Option("rows", "--budget-unit", help="rows or tokens (budget, min/max, overrides in tokens)."),
    tokenizer=typer.Option("model", "--tokenizer", help="With --budget-unit tokens: model (the embedding "
                                                        "model's tokenizer) or words."),
    strata=typer.Option(None, "--strata", help="A column to split each cluster's budget across (e.g. source)."),
    strata_bound=typer.Option(None, "--strata-bound", help="STRATUM=MIN:MAX per cluster x stratum cell, repeatable."),
    reference=typer.Option(None, "--reference", help="A reference/eval file: coverage and leakage check."),
    reference_text=typer.Option("text", "--reference-text", help="The reference file's text column."),
    coverage_distance=typer.Option(0.3, "--coverage-distance",
                                   help="A reference row is covered within this cosine distance."),
    leakage=typer.Option("warn", "--leakage", help="With --reference: off, warn or drop rows that are "
                                                   "near-copies of reference rows."),
    leakage_threshold=typer.Option(0.95, "--leakage-threshold", help="Cosine similarity that counts as leakage."),
    target=typer.Option(None, "--target", help="A target file (any input format): the budget follows the share of "
                                                "its rows nearest each cluster (importance resampling; replaces "
                                                "--policy)."),
    target_text=typer.Option("text", "--target-text", help="The target file's text column."),
)


@app.command("select")
@_guard
def select_(
    budget: int = SELECT_OPTS["budget"],
    policy: str = SELECT_OPTS["policy"],
    pick: str = SELECT_OPTS["pick"],
    seed: int = SELECT_OPTS["seed"],
    noise: str = SELECT_OPTS["noise"],
    min_per_cluster: int = SELECT_OPTS["min_per_cluster"],
    max_per_cluster: Optional[int] = SELECT_OPTS["max_per_cluster"],
    override: Optional[list[str]] = SELECT_OPTS["override"],
    score_column: Optional[str] = SELECT_OPTS["score_column"],
    ascending: bool = SELECT_OPTS["ascending"],
    pin: Optional[str] = SELECT_OPTS["pin"],
    ban: Optional[str] = SELECT_OPTS["ban"],
    dedup: str = DEPTH_OPTS["dedup"],
    near_dup: float = DEPTH_OPTS["near_dup"],
    mmr_lambda: float = DEPTH_OPTS["mmr_lambda"],
    soft_noise: Optional[float] = DEPTH_OPTS["soft_noise"],
    budget_unit: str = DEPTH_OPTS["budget_unit"],
    tokenizer: str = DEPTH_OPTS["tokenizer"],
    strata: Optional[str] = DEPTH_OPTS["strata"],
    strata_bound: Optional[list[str]] = DEPTH_OPTS["strata_bound"],
    reference: Optional[str] = DEPTH_OPTS["reference"],
    reference_text: str = DEPTH_OPTS["reference_text"],
    coverage_distance: float = DEPTH_OPTS["coverage_distance"],
    leakage: str = DEPTH_OPTS["leakage"],
    leakage_threshold: float = DEPTH_OPTS["leakage_threshold"],
    target: Optional[str] = DEPTH_OPTS["target"],
    target_text: str = DEPTH_OPTS["target_text"],
    workspace: Path = WS_OPT,
):
    """Choose rows from the current map and remember the choice for `sieve export`."""
    from .engines.local import load_map, run_selection

    ws = Workspace(workspace)
    params = _select_params(budget, policy, pick, seed, noise, min_per_cluster, max_per_cluster, override,
                            score_column, ascending, pin, ban, dedup=dedup, near_dup=near_dup, mmr_lambda=mmr_lambda, soft_noise=soft_noise, budget_unit=budget_unit, tokenizer=tokenizer, strata=strata, strata_bound=strata_bound, reference=reference, reference_text=reference_text, coverage_distance=coverage_distance, leakage=leakage, leakage_threshold=leakage_threshold, target=target, target_text=target_text)
    data = load_map(ws)
    selection = run_selection(ws, data, params)
    ws.set_meta("selection", params.to_dict())
    _print_selection(data, selection, params)


def _print_selection(data, selection, params):
    import numpy as np

    from core.stages.metrics import fmt_distance
    from .engines.local import selection_report

    m = selection_report(data, selection, params, vectors=len(selection) <= 20_000)
    names = data.cluster_names
    unit = params.unit
    t = Table(title=f"{len(selection)} rows selected" + (f" ({int(selection.tokens.sum()):,} tokens)"
                                                          if selection.tokens is not None else ""))
    for col in ("cluster", "name", "size", f"budget ({unit})", "selected"):
        t.add_column(col)
    chosen = dict(zip(*np.unique(selection.clusters, return_counts=True))) if len(selection) else {}
    for c, n in sorted(selection.allocation.items(), key=lambda kv: (kv[0] == -1, kv[0])):
        t.add_row(str(c), names.get(c, str(c)), str(m.counts_full.get(c, 0)), str(n), str(int(chosen.get(c, 0))))
    err.print(t)
    rnd = f" (random: {fmt_distance(m.nn_distance_random)})" if m.nn_distance_random is not None else ""
    nn = fmt_distance(m.nn_distance)
    err.print(f"coverage {m.coverage:.0%} of clusters, JS divergence {m.jsd:.3f}, mean NN distance {nn}{rnd}")
    cmp = Table(title=f"this subset vs random subsets of the same size (mean of {m.n_random})")
    for col in ("metric", "subset", "random", "better"):
        cmp.add_column(col)
    for row in m.comparison():
        fmt = (lambda v: "n/a" if v is None else f"{round(v, 3) + 0.0:.3f}")  # never "-0.000"
        cmp.add_row(row["metric"], fmt(row["subset"]), fmt(row["random"]), str(row["better"] or ""))
    err.print(cmp)
    for note in selection.notes:
        err.print(f"note: {note}")
    return m


@app.command()
@_guard
def export(
    out_path: Path = typer.Option(..., "--out", "-o", help="Output file: .parquet, .jsonl or .csv."),
    fmt: Optional[str] = typer.Option(None, "--format", help="parquet, jsonl or csv (default: extension)."),
    manifest: Optional[Path] = typer.Option(None, help="Manifest path (default: OUT + .manifest.json)."),
    include_duplicates: bool = typer.Option(False, "--include-duplicates",
                                            help="Also export the other members of each chosen duplicate group."),
    workspace: Path = WS_OPT,
):
    """Export the last selection (from `sieve select`) and its manifest."""
    from .engines.local import load_map, run_selection
    from .selection import SelectParams

    ws = Workspace(workspace)
    with ws.lock("export"):  # no ingest or map may change the dataset under the export
        saved = ws.get_meta("selection")
        if not saved:
            raise SieveError("no selection yet; run `sieve select --budget N` first")
        data = load_map(ws)
        params = SelectParams.from_dict(saved)
        _export(ws, data, params, run_selection(ws, data, params), out_path, fmt, manifest,
                include_duplicates=include_duplicates)


def _export(ws, data, params, selection, out_path, fmt, manifest_path, *, include_duplicates: bool = False):
    """Write the rows and their manifest as a consistent pair (core.stages.export.export_with_manifest)."""
    from core.stages.export import format_for
    from .manifest import build_manifest, export_with_manifest
    from .engines.local import selection_report

    fmt = format_for(out_path, fmt)
    map_params = data.params
    metrics = selection_report(data, selection, params, vectors=len(selection) <= 20_000)
    path = Path(out_path).expanduser().resolve()
    mpath = Path(manifest_path) if manifest_path else Path(str(path) + ".manifest.json")
    man = build_manifest(data, map_params, params, selection, metrics,
                         {"path": str(path), "format": fmt, "include_duplicates": include_duplicates})
    path, mpath, man = export_with_manifest(
        ws, selection, data.cluster_names, path, fmt, mpath, man, data,
        keep_text=data.dataset.text.template is not None, include_duplicates=include_duplicates,
        dataset_key=data.keys.dataset)
    extra = ""
    if include_duplicates and selection.duplicate_positions is not None:
        extra = f" (+{len(selection.duplicate_positions)} duplicate(s) of them)"
    err.print(f"wrote {len(selection)} rows{extra} to {path}")
    err.print(f"wrote manifest to {mpath}")
    return man


@app.command()
@_guard
def run(
    data: str = typer.Argument(..., help="A file or glob: .csv .tsv .json .jsonl .parquet"),
    text: Optional[str] = typer.Option(None, "--text", "-t"),
    template: Optional[str] = typer.Option(None),
    vectors: Optional[str] = typer.Option(None),
    fmt_in: Optional[str] = typer.Option(None, "--input-format"),
    delimiter: Optional[str] = typer.Option(None, "--delimiter", help=DELIMITER_HELP),
    encoding: Optional[str] = typer.Option(None, "--encoding", help=ENCODING_HELP),
    model: str = MODEL_OPT,
    batch_size: int = typer.Option(64),
    device: str = typer.Option("auto"),
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
    n_neighbors: int = typer.Option(15),
    min_dist: float = typer.Option(0.1),
    metric: str = typer.Option("cosine"),
    dims: int = typer.Option(5),
    min_cluster_size: Optional[int] = typer.Option(None),
    min_samples: Optional[int] = typer.Option(None),
    map_seed: int = typer.Option(42, help="Seed of the projection."),
    exact: bool = EXACT_OPT,
    long_text: str = LONG_TEXT_OPT,
    edits: Optional[Path] = EDITS_OPT,
    cluster_method: str = CLUSTER_METHOD_OPT,
    budget: int = SELECT_OPTS["budget"],
    policy: str = SELECT_OPTS["policy"],
    pick: str = SELECT_OPTS["pick"],
    seed: int = SELECT_OPTS["seed"],
    noise: str = SELECT_OPTS["noise"],
    min_per_cluster: int = SELECT_OPTS["min_per_cluster"],
    max_per_cluster: Optional[int] = SELECT_OPTS["max_per_cluster"],
    override: Optional[list[str]] = SELECT_OPTS["override"],
    score_column: Optional[str] = SELECT_OPTS["score_column"],
    ascending: bool = SELECT_OPTS["ascending"],
    pin: Optional[str] = SELECT_OPTS["pin"],
    ban: Optional[str] = SELECT_OPTS["ban"],
    dedup: str = DEPTH_OPTS["dedup"],
    near_dup: float = DEPTH_OPTS["near_dup"],
    mmr_lambda: float = DEPTH_OPTS["mmr_lambda"],
    soft_noise: Optional[float] = DEPTH_OPTS["soft_noise"],
    budget_unit: str = DEPTH_OPTS["budget_unit"],
    tokenizer: str = DEPTH_OPTS["tokenizer"],
    strata: Optional[str] = DEPTH_OPTS["strata"],
    strata_bound: Optional[list[str]] = DEPTH_OPTS["strata_bound"],
    reference: Optional[str] = DEPTH_OPTS["reference"],
    reference_text: str = DEPTH_OPTS["reference_text"],
    coverage_distance: float = DEPTH_OPTS["coverage_distance"],
    leakage: str = DEPTH_OPTS["leakage"],
    leakage_threshold: float = DEPTH_OPTS["leakage_threshold"],
    target: Optional[str] = DEPTH_OPTS["target"],
    target_text: str = DEPTH_OPTS["target_text"],
    out_path: Path = typer.Option(..., "--out", "-o", help="Output file (--engine ray: a new folder of Parquet "
                                                           "shards)."),
    fmt: Optional[str] = typer.Option(None, "--format"),
    manifest: Optional[Path] = typer.Option(None),
    include_duplicates: bool = typer.Option(False, "--include-duplicates",
                                            help="Also export the other members of each chosen duplicate group."),
    engine: str = typer.Option("local", help="local (this process) or ray (Parquet shards on a Ray cluster: "
                                             "sharded embedding, a map fitted on a sample, per-cluster picks)."),
    address: Optional[str] = typer.Option(None, help="--engine ray: Ray cluster address (default: RAY_ADDRESS, "
                                          "else a local Ray instance)."),
    workers: Optional[int] = typer.Option(None, help="--engine ray: actors (default: one per GPU, else per CPU)."),
    shard_rows: int = typer.Option(50_000, help="--engine ray: row ids per shard (the unit of resume)."),
    sample_size: int = typer.Option(200_000, help="--engine ray: rows the UMAP/HDBSCAN fit sees; every other "
                                                  "row is assigned."),
    sample_seed: int = typer.Option(0, help="--engine ray: seed of the sample."),
    workspace: Path = WS_OPT,
):
    """Everything: ingest -> embed -> map -> select -> export."""
    from core.stages.export import format_for
    from core.stages.ingest import ingest as do_ingest
    from .engines.local import build_map, load_map, run_selection

    if engine not in ("local", "ray"):
        raise SieveError(f"--engine must be local or ray, got {engine!r}")
    if engine == "local":
        format_for(out_path, fmt)  # fail fast on a bad output name
    elif fmt not in (None, "parquet"):
        raise SieveError(f"--format {fmt} is not available with --engine ray: it writes Parquet shards")
    ws = Workspace(workspace)
    ingest_params = _ingest_params(data, text, template, vectors, fmt_in, delimiter, encoding)
    map_params = _map_params(model, batch_size, device, n_neighbors, min_dist, metric, dims, min_cluster_size,
                             min_samples, map_seed, exact, backend, long_text, cluster_method)
    sel_params = _select_params(budget, policy, pick, seed, noise, min_per_cluster, max_per_cluster, override,
                                score_column, ascending, pin, ban, dedup=dedup, near_dup=near_dup, mmr_lambda=mmr_lambda, soft_noise=soft_noise, budget_unit=budget_unit, tokenizer=tokenizer, strata=strata, strata_bound=strata_bound, reference=reference, reference_text=reference_text, coverage_distance=coverage_distance, leakage=leakage, leakage_threshold=leakage_threshold, target=target, target_text=target_text)
    if engine == "ray" and map_params.cluster.algorithm != "hdbscan":
        raise SieveError(f"--cluster-method {map_params.cluster.algorithm} is available with --engine local only")
    if engine == "ray":
        if long_text != "truncate":
            raise SieveError("--long-text chunk is not available with --engine ray yet; use --engine local")
        if edits is not None:
            raise SieveError("--edits is not available with --engine ray: cluster edits apply to a local map")
        _run_scaled(ws, ingest_params, map_params, sel_params, out_path, manifest, address=address,
                    backend=backend, workers=workers, shard_rows=shard_rows, sample_size=sample_size,
                    sample_seed=sample_seed, include_duplicates=include_duplicates)
        return
    from .curate import read_edits

    edit_list = read_edits(edits) if edits is not None else None
    info, cached = do_ingest(ws, ingest_params)
    _print_dataset(info, cached)
    t0 = time.perf_counter()
    _warm_up_large_map(info.n_rows)
    with _progress() as (progress, on_stage), _naming_edits_file(edits):
        keys = build_map(ws, map_params, progress=progress, on_stage=on_stage, edits=edit_list)
    _print_long_texts(ws, keys.embed, long_text)
    mdata = load_map(ws, keys)
    _print_clusters(mdata)
    selection = run_selection(ws, mdata, sel_params)
    ws.set_meta("selection", sel_params.to_dict())
    _print_selection(mdata, selection, sel_params)
    _export(ws, mdata, sel_params, selection, out_path, fmt, manifest, include_duplicates=include_duplicates)
    err.print(f"done in {time.perf_counter() - t0:.1f} s")


@app.command()
@_guard
def reproduce(
    manifest_path: Path = typer.Argument(..., help="A manifest written by `sieve export` or `sieve run`."),
    out_path: Path = typer.Option(..., "--out", "-o"),
    data: Optional[str] = typer.Option(None, help="The data, if not at the manifest's recorded path."),
    fmt: Optional[str] = typer.Option(None, "--format"),
    manifest: Optional[Path] = typer.Option(None, help="Where to write the new manifest."),
    workspace: Path = WS_OPT,
):
    """Rebuild the exact subset of a manifest; fails if the row ids differ."""
    from core.stages.export import format_for
    from .manifest import read_manifest, verify_export
    from .engines.local import reproduce as do_reproduce
    from .engines.local import restoring

    man = read_manifest(manifest_path)
    ws = Workspace(workspace)
    if man.get("engine") == "ray":  # a sharded export: OUT is a folder of Parquet shards
        _reproduce_scaled(ws, man, data, out_path, manifest)
        return
    format_for(out_path, fmt)
    problem = verify_export(man, manifest_path)
    if problem:
        err.print(f"warning: {problem}", markup=False, highlight=False)
    with restoring(ws), _progress() as (progress, on_stage):  # a failure leaves the workspace as it was
        mdata, selection, map_params, sel_params = do_reproduce(ws, man, data, progress=progress,
                                                                on_stage=on_stage,
                                                                manifest_path=manifest_path)  # checks the ids
        new = _export(ws, mdata, sel_params, selection, out_path, fmt, manifest,
                      include_duplicates=bool(man.get("export", {}).get("include_duplicates", False)))
    _print_long_texts(ws, mdata.keys.embed, map_params.embed.long_text)
    err.print(f"reproduced: identical {len(selection)} row ids (sha256 {new['selected_ids_sha256'][:12]})")


@app.command()
@_guard
def verify(manifest_path: Path = typer.Argument(..., help="A manifest written by `sieve export` or `sieve run`.")):
    """Check that the data file beside a manifest is the one it describes (sha256); exit 2 if not."""
    from .manifest import read_manifest, verify_export

    man = read_manifest(manifest_path)
    problem = verify_export(man, manifest_path)
    if problem:
        raise SieveError(problem)
    err.print(f"ok: {man.get('n_selected', '?')} rows; the data file matches manifest {manifest_path}",
              markup=False, highlight=False)


@app.command()
@_guard
def info(workspace: Path = WS_OPT):
    """What the workspace holds."""
    from core.stages.dataset import current_dataset

    ws = Workspace(workspace)
    _print_dataset(current_dataset(ws), False)
    m = ws.get_meta("map")
    if m:
        err.print(f"map: model {m['keys']['model_id']}, keys {m['keys']}")
    s = ws.get_meta("selection")
    if s:
        err.print(f"selection: budget {s['budget']}, policy {s['policy']}, pick {s['pick']}, seed {s['seed']}")


@app.command("app")
def app_(port: int = typer.Option(8501), workspace: Path = WS_OPT):
    """Open the Streamlit app."""
    app_py = Path(__file__).resolve().parent.parent / "app.py"
    if not app_py.is_file():
        _fail(SieveError(f"app.py not found next to the core package ({app_py}); run from a source checkout"))
    env = dict(os.environ, SIEVE_WORKSPACE=str(workspace))
    raise typer.Exit(subprocess.call([sys.executable, "-m", "streamlit", "run", str(app_py),
                                      "--server.port", str(port)], env=env))


# -- the Ray engine: `sieve scale map|select` (after `sieve embed --engine ray`) -------------------

scale_app = typer.Typer(no_args_is_help=True, help="Map and select at scale on Ray (after `sieve embed --engine ray`).")
app.add_typer(scale_app, name="scale")
ADDRESS_OPT = typer.Option(None, help="Ray cluster address (default: RAY_ADDRESS, else a local Ray instance).")


@scale_app.command("map")
@_guard
def scale_map_(
    sample_size: int = typer.Option(200_000, help="Rows the UMAP/HDBSCAN fit sees; every other row is assigned."),
    sample_seed: int = typer.Option(0, help="Seed of the sample."),
    n_neighbors: int = typer.Option(15), min_dist: float = typer.Option(0.1), metric: str = typer.Option("cosine"),
    dims: int = typer.Option(5), seed: int = typer.Option(42, help="Seed of the projection."),
    min_cluster_size: Optional[int] = typer.Option(None, help="HDBSCAN min_cluster_size on the sample."),
    min_samples: Optional[int] = typer.Option(None),
    workers: Optional[int] = typer.Option(None, help="Assignment workers (default: one per CPU)."),
    address: Optional[str] = ADDRESS_OPT,
    workspace: Path = WS_OPT,
):
    """Fit the map on a seeded sample, then place every row on Ray (map-*.parquet shards)."""
    from .engines import ray as scale
    from core.stages.cluster import ClusterParams
    from core.stages.project import ProjectParams

    ws = Workspace(workspace)
    if address:
        scale.connect(address)
    params = scale.ScaleMapParams(sample_size, sample_seed,
                                  ProjectParams(n_neighbors=n_neighbors, min_dist=min_dist, metric=metric,
                                                cluster_dims=dims, seed=seed),
                                  ClusterParams(min_cluster_size=min_cluster_size, min_samples=min_samples), workers)
    res = scale.scale_map(ws, None, params)
    err.print(f"map: {res.n_rows} rows, {res.n_clusters} clusters fitted on {res.n_sample} sampled rows; "
              f"{res.n_computed} shard(s) placed, {res.n_skipped} already done; {res.glob}")


@scale_app.command("select")
@_guard
def scale_select_(
    budget: int = typer.Option(..., help="Rows to select."),
    policy: str = typer.Option("equal"), pick: str = typer.Option("random"), seed: int = typer.Option(0),
    noise: str = typer.Option("include"), min_per_cluster: int = typer.Option(0, "--min"),
    max_per_cluster: Optional[int] = typer.Option(None, "--max"),
    override: Optional[list[str]] = typer.Option(None, help="CLUSTER=ROWS (repeatable)."),
    pin: Optional[str] = typer.Option(None), ban: Optional[str] = typer.Option(None),
    out_path: Path = typer.Option(..., "--out", "-o", help="Output folder for the Parquet shards (new or empty)."),
    manifest: Optional[Path] = typer.Option(None, help="Manifest path (default: OUT + .manifest.json)."),
    address: Optional[str] = ADDRESS_OPT,
    workspace: Path = WS_OPT,
):
    """Allocate on per-cluster counts, pick per cluster in parallel, export shards + manifest."""
    from .engines import ray as scale

    ws = Workspace(workspace)
    params = _select_params(budget, policy, pick, seed, noise, min_per_cluster, max_per_cluster, override, None,
                            False, pin, ban)
    map_dir, embed_dir = scale.map_folder(ws)
    if address:
        scale.connect(address)
    sel = scale.scale_select(map_dir, embed_dir, params)
    _write_scaled(ws, sel, params, embed_dir, map_dir, out_path, manifest)


def _run_scaled(ws, ingest_params, map_params, sel_params, out_path, manifest_path, *, address, backend, workers,
                shard_rows, sample_size, sample_seed, include_duplicates) -> None:
    """`sieve run --engine ray`: ingest, sharded embedding, sample fit + assignment on Ray,
    per-cluster picks on Ray, Parquet shards + manifest."""
    from .engines import ray as scale
    from core.stages.ingest import ingest as do_ingest

    if include_duplicates:
        raise SieveError("--include-duplicates is not available with --engine ray (duplicate groups are "
                         "not computed at scale)")
    scale.check_select_params(sel_params)  # before any hour-long embedding
    out_dir = Path(out_path).expanduser().resolve()
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise SieveError(f"--out {out_dir} exists and is not an empty folder; --engine ray writes a new folder "
                         "of Parquet shards")
    t0 = time.perf_counter()
    embed_params = scale.ScaleEmbedParams(
        model=map_params.embed.model, batch_size=map_params.embed.batch_size, device=map_params.embed.device,
        shard_rows=shard_rows, workers=workers, backend=backend)  # auto: decided by the cluster's GPUs
    scale_params = scale.ScaleMapParams(sample_size, sample_seed, map_params.project, map_params.cluster, workers)
    info, cached = do_ingest(ws, ingest_params)
    _print_dataset(info, cached)
    scale.connect(address)
    emb = scale.embed_shards(ws, embed_params)
    err.print(f"embeddings: {emb.n_rows} x {emb.dim} from {emb.model_id} in {emb.n_shards} shard(s) "
              f"({emb.n_computed} computed, {emb.n_skipped} already done, {emb.workers} worker(s))")
    res = scale.scale_map(ws, emb.folder, scale_params)
    err.print(f"map: {res.n_clusters} clusters fitted on {res.n_sample} sampled rows; {res.n_computed} shard(s) "
              f"placed, {res.n_skipped} already done")
    _print_scaled_clusters(scale.scaled_map_info(res.folder))
    sel = scale.scale_select(res.folder, emb.folder, sel_params)
    _write_scaled(ws, sel, sel_params, emb.folder, res.folder, out_dir, manifest_path)
    err.print(f"done in {time.perf_counter() - t0:.1f} s")


def _print_scaled_clusters(info: dict) -> None:
    clusters = info.get("clusters") or []
    t = Table(title=f"{len([c for c in clusters if c['id'] >= 0])} clusters over {info['n_rows']} rows")
    for col in ("id", "name", "size", "keywords"):
        t.add_column(col)
    for c in clusters:
        t.add_row(str(c["id"]), c["name"], str(c["size"]), ", ".join(c["keywords"][:6]))
    err.print(t)


def _write_scaled(ws, sel, params, embed_dir, map_dir, out_path, manifest_path):
    """Export a sharded selection (Parquet part files) and its manifest; returns the manifest."""
    from .engines import ray as scale
    from .manifest import write_manifest

    out_dir = Path(out_path).expanduser().resolve()
    files = scale.export_scaled(ws, sel, out_dir)
    man = scale.ray_manifest(ws, embed_dir, map_dir, params, sel,
                             {"path": str(out_dir), "format": "parquet", "files": [f.name for f in files]}).to_dict()
    mpath = write_manifest(manifest_path or Path(str(out_dir) + ".manifest.json"), man)
    err.print(f"wrote {len(sel)} rows in {len(files)} file(s) to {out_dir}")
    err.print(f"wrote manifest to {mpath}")
    return man


def _reproduce_scaled(ws, man, data, out_path, manifest_path) -> None:
    from .engines import ray as scale

    sel, embed_dir, map_dir = scale.reproduce_scaled(ws, man, data)
    if sorted(int(x) for x in sel.row_ids) != man["selected_row_ids"]:
        a, b = set(sel.row_ids.tolist()), set(man["selected_row_ids"])
        raise SieveError(f"reproduced subset differs from the manifest: {len(a - b)} row(s) added, "
                         f"{len(b - a)} missing")
    from .selection import SelectParams

    new = _write_scaled(ws, sel, SelectParams.from_dict(man["select"]), embed_dir, map_dir, out_path, manifest_path)
    err.print(f"reproduced: identical {len(sel)} row ids (sha256 {new['selected_ids_sha256'][:12]})")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
