"""The CLI's options, each declared once, in groups that follow the Params dataclasses.

An :class:`Opt` names the command parameter, its flags, type and help; its default comes
from the dataclass field it fills (``EmbedParams``, ``ProjectParams``, ``ClusterParams``,
``SelectParams``, ``ScaleMapParams``, ``ScaleEmbedParams``) unless the CLI deliberately
differs (``--pick`` defaults to ``diverse``, ``--leakage`` to ``warn``).  ``with_options``
builds a command's signature from groups, so ``sieve select`` and ``sieve run`` share
one declaration of every selection option and typer sees ordinary parameters.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from core.stages.cluster import ClusterParams
from core.stages.embed import EmbedParams
from core.stages.project import ProjectParams
from core.store.workspace import DEFAULT_WORKSPACE

from .. import queries
from ..engines.ray import ScaleEmbedParams, ScaleMapParams
from ..selection import DEFAULT_CLUSTER_CHOICE, DEFAULT_PICK, DEFAULT_POLICY, DEFAULT_SOFT_NOISE, SelectParams

REQUIRED = ...


def default_of(cls: type, name: str) -> Any:
    """The default of dataclass ``cls``'s field ``name`` (its factory called, if it has one)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


@dataclass(frozen=True)
class Opt:
    """One command-line parameter: ``name`` (the Python parameter), ``flags`` (none: typer's
    ``--name``), ``annotation``, ``default`` (REQUIRED: must be given), ``help``, whether
    it is a positional ``argument``, and the Params ``field`` it fills (None: ``name``)."""

    name: str
    annotation: Any
    default: Any = None
    flags: tuple[str, ...] = ()
    help: str | None = None
    argument: bool = False
    field: str | None = None

    def flag(self) -> str:
        """The flag a user types (the first of ``flags``, else typer's ``--name`` with dashes)."""
        return self.flags[0] if self.flags else "--" + self.name.replace("_", "-")

    def info(self):
        """The typer.Option (or typer.Argument) declaring this parameter."""
        if self.argument:
            return typer.Argument(self.default, help=self.help)
        return typer.Option(self.default, *self.flags, help=self.help)

    def parameter(self) -> inspect.Parameter:
        """This option as a keyword parameter of a command's signature."""
        return inspect.Parameter(self.name, inspect.Parameter.KEYWORD_ONLY, default=self.info(),
                                 annotation=self.annotation)

    def but(self, **changes) -> "Opt":
        """A copy with some fields changed (e.g. another help for one command)."""
        return dataclasses.replace(self, **changes)


def group(*opts: Opt) -> dict[str, Opt]:
    """Options by parameter name, in declaration order."""
    return {o.name: o for o in opts}


def pick(opts: dict[str, Opt], *names: str) -> list[Opt]:
    """Some options of a group, in the order named."""
    return [opts[n] for n in names]


def with_options(*groups) -> Callable:
    """Give a command ``fn(o)`` the parameters of ``groups`` (dicts or lists of Opt): typer
    reads the built signature; ``fn`` receives them as one namespace ``o``."""
    opts = [o for g in groups for o in (g.values() if isinstance(g, dict) else g)]
    signature = inspect.Signature([o.parameter() for o in opts])

    def wrap(fn: Callable) -> Callable:
        def command(**kwargs):
            return fn(types.SimpleNamespace(**kwargs))

        command.__name__, command.__qualname__, command.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
        command.__module__ = fn.__module__
        command.__signature__ = signature
        return command

    return wrap


E, P, C, S = EmbedParams, ProjectParams, ClusterParams, SelectParams
DELIMITER_HELP = "CSV/TSV delimiter: one character or comma, semicolon, pipe, tab (default: detected; tab for .tsv)."
ENCODING_HELP = "Encoding of CSV/TSV/JSON files, e.g. latin-1, cp1252, utf-16 (default: UTF-8; other bytes are refused)."
BACKEND_HELP = ("auto (onnx-int8 on the CPU when onnxruntime is installed, else torch), torch (exact fp32; fp16 on "
                "CUDA), onnx-int8 (int8 ONNX Runtime, CPU, ~0.99 cosine to fp32) or static (fast preview).")
RAY_ADDRESS_HELP = "Ray cluster address (default: RAY_ADDRESS, else a local Ray instance)."

WORKSPACE = Opt("workspace", Path, DEFAULT_WORKSPACE, ("--workspace", "-w"),
                "Workspace folder (DuckDB file + artifacts).")

INGEST = group(
    Opt("data", str, REQUIRED, help="A file or glob: .csv .tsv .json .jsonl .parquet", argument=True),
    Opt("text", Optional[str], None, ("--text", "-t"), "Column holding the text."),
    Opt("template", Optional[str], None, help="Text template over columns, e.g. '{instruction}\\n{input}'."),
    Opt("vectors", Optional[str], None, help="Column of precomputed vectors (skips the model)."),
    Opt("fmt", Optional[str], None, ("--format",), "csv, tsv, json, jsonl or parquet (default: extension)."),
    Opt("delimiter", Optional[str], None, ("--delimiter",), DELIMITER_HELP),
    Opt("encoding", Optional[str], None, ("--encoding",), ENCODING_HELP),
)

EMBED = group(
    Opt("model", str, default_of(E, "model"), help="sentence-transformers name or local path."),
    Opt("batch_size", int, default_of(E, "batch_size"), help="Texts per batch."),
    Opt("device", str, default_of(E, "device"), help="auto, cpu, cuda or mps."),
    Opt("backend", str, default_of(E, "backend"), ("--backend",), BACKEND_HELP),
)
LONG_TEXT = Opt("long_text", str, default_of(E, "long_text"), ("--long-text",),
                "Texts over the model's token limit: truncate (embed the first max_seq_length tokens, as "
                "sentence-transformers does) or chunk (embed overlapping windows and mean-pool them).")

MAP = group(
    Opt("n_neighbors", int, default_of(P, "n_neighbors"), help="UMAP n_neighbors."),
    Opt("min_dist", float, default_of(P, "min_dist"), help="UMAP min_dist of the 2-D map."),
    Opt("metric", str, default_of(P, "metric"), help="UMAP metric."),
    Opt("dims", int, default_of(P, "cluster_dims"), help="Dimensions of the projection used for clustering."),
    Opt("min_cluster_size", Optional[int], default_of(C, "min_cluster_size"),
        help="HDBSCAN min_cluster_size (default ~sqrt(n)/4)."),
    Opt("min_samples", Optional[int], default_of(C, "min_samples"),
        help="HDBSCAN min_samples (default min(5, min_cluster_size))."),
    Opt("assign_noise", float, default_of(C, "assign_noise"), ("--assign-noise",),
        "A row HDBSCAN leaves unclustered joins its most likely cluster when its soft membership is at least "
        "this (0-1; 0: every such row)."),
    Opt("keep_noise", bool, False, ("--keep-noise",),
        "Leave every unclustered row unclustered (no --assign-noise; the behaviour of maps made before it)."),
    Opt("seed", int, default_of(P, "seed"), help="Seed of the projection."),
    Opt("exact", bool, default_of(P, "exact"), ("--exact",),
        "Seeded single-threaded UMAP: bit-reproducible, slower (default: parallel UMAP; exports then store the "
        "map next to the manifest)."),
    LONG_TEXT,
    Opt("edits", Optional[Path], None, ("--edits",), "A JSON file of cluster edits (rename, merge, split) to apply "
        "on top of the map, as `sieve curate` does."),
    Opt("cluster_method", str, default_of(C, "algorithm"), ("--cluster-method",),
        "hdbscan (on the UMAP n-D projection), plscan (fast_hdbscan's PLSCAN, same input), evoc (EVoC on the "
        "vectors) or leiden (Leiden communities of the kNN graph). See docs/SELECTION.md."),
)

SELECT_OPTS = group(
    Opt("budget", int, REQUIRED, ("--budget", "-b"), "Total rows (or tokens, with --budget-unit tokens) to select."),
    Opt("policy", str, DEFAULT_POLICY, help="sqrt (the default: budget by the square root of cluster size), "
                                            "proportional or equal."),
    Opt("pick", str, DEFAULT_PICK, help=f"How rows are picked inside a cluster (default {DEFAULT_PICK}). "
                                        f"{queries.pick_help()}."),
    Opt("seed", int, default_of(S, "seed"), help="Seed of the pick."),
    Opt("noise", str, default_of(S, "noise"), help="include, exclude, or a row budget for unclustered rows."),
    Opt("min_per_cluster", int, default_of(S, "min_per_cluster"), ("--min",), "Floor per cluster."),
    Opt("max_per_cluster", Optional[int], default_of(S, "max_per_cluster"), ("--max",), "Cap per cluster."),
    Opt("override", Optional[list[str]], None, ("--override",), "CLUSTER=ROWS, repeatable.", field="overrides"),
    Opt("score_column", Optional[str], default_of(S, "score_column"),
        help="Numeric column for --pick score (or the relevance of --pick mmr)."),
    Opt("ascending", bool, default_of(S, "score_ascending"), ("--ascending",), "With --pick score: lowest first.",
        field="score_ascending"),
    Opt("pin", Optional[str], None, help="Row ids always included (comma-separated, or a file).", field="pins"),
    Opt("ban", Optional[str], None, help="Row ids never included (comma-separated, or a file).", field="bans"),
)
FIELD_DEFAULT = object()  # an option whose default is its field's


def _depth(name: str, annotation: Any, field: str, help: str, default: Any = FIELD_DEFAULT) -> Opt:
    """A selection-depth option that fills SelectParams' ``field``, with that field's default
    unless the CLI gives its own ``default``."""
    return Opt(name, annotation, default_of(S, field) if default is FIELD_DEFAULT else default, help=help, field=field)


# option, type, the SelectParams field it sets, help (, the CLI's own default; else the field's)
DEPTH_OPTS = group(*(_depth(*row) for row in (
    ("dedup", str, "dedup", "none, exact (normalised text) or near (also embeddings within a cluster above "
     "--near-dup): one pick per duplicate group."),
    ("near_dup", float, "near_dup_threshold", "Cosine similarity that makes two rows near-duplicates."),
    ("mmr_lambda", float, "mmr_lambda", "With --pick mmr: 1 = most relevant, 0 = most novel."),
    ("soft_noise", Optional[float], "soft_noise_threshold",
     f"Unclustered rows with soft membership >= this join their most likely cluster for the selection "
     f"(default {DEFAULT_SOFT_NOISE:g}: every one; off with --engine ray, --noise exclude or a noise budget).", None),
    ("budget_unit", str, "budget_unit", "rows or tokens (budget, min/max, overrides in tokens)."),
    ("tokenizer", str, "tokenizer", "With --budget-unit tokens: model (the embedding model's tokenizer) or words."),
    ("strata", Optional[str], "strata_column", "A column to split each cluster's budget across (e.g. source)."),
    ("strata_bound", Optional[list[str]], "strata_bounds", "STRATUM=MIN:MAX per cluster x stratum cell, repeatable.",
     None),
    ("reference", Optional[str], "reference_path", "A reference/eval file: coverage and leakage check."),
    ("reference_text", str, "reference_text", "The reference file's text column."),
    ("coverage_distance", float, "coverage_distance", "A reference row is covered within this cosine distance."),
    ("leakage", str, "leakage", "With --reference: off, warn or drop rows that are near-copies of reference rows.",
     "warn"),
    ("leakage_threshold", float, "leakage_threshold", "Cosine similarity that counts as leakage."),
    ("target", Optional[str], "target_path", "A target file (any input format): the budget follows the share of "
     "its rows nearest each cluster (importance resampling; replaces --policy)."),
    ("target_text", str, "target_text", "The target file's text column."),
    ("cluster_choice", Optional[str], "cluster_choice",
     "Which clusters get the rows when the budget cannot give each a row: size (the largest shares) or "
     f"coverage (facility location over cluster medoids) (default {DEFAULT_CLUSTER_CHOICE}; --engine ray: size).",
     None),
)), Opt("no_soft_noise", bool, False, ("--no-soft-noise",),
        "Leave the map's unclustered rows unclustered for the selection (soft noise off).",
        field="soft_noise_threshold"))


def selection_flag(field: str) -> str:
    """The flag of the selection option (SELECT_OPTS, DEPTH_OPTS) that fills SelectParams'
    ``field`` (``soft_noise_threshold`` -> ``--soft-noise``, ``min_per_cluster`` -> ``--min``);
    ``field`` itself when no option fills it."""
    return next((o.flag() for o in (*SELECT_OPTS.values(), *DEPTH_OPTS.values()) if (o.field or o.name) == field),
                field)


EXPORT = group(
    Opt("out_path", Path, REQUIRED, ("--out", "-o"), "Output file: .parquet, .jsonl or .csv."),
    Opt("fmt", Optional[str], None, ("--format",), "parquet, jsonl or csv (default: extension)."),
    Opt("manifest", Optional[Path], None, help="Manifest path (default: OUT + .manifest.json)."),
    Opt("include_duplicates", bool, False, ("--include-duplicates",),
        "Also export the other members of each chosen duplicate group."),
)

RAY_OPTS = group(
    Opt("address", Optional[str], None, help="--engine ray: " + RAY_ADDRESS_HELP),
    Opt("workers", Optional[int], default_of(ScaleEmbedParams, "workers"),
        help="--engine ray: actors (default: one per GPU, else per CPU)."),
    Opt("shard_rows", int, default_of(ScaleEmbedParams, "shard_rows"),
        help="--engine ray: row ids per shard (the unit of resume)."),
    Opt("sample_size", int, default_of(ScaleMapParams, "sample_size"),
        help="--engine ray: rows the UMAP/HDBSCAN fit sees; every other row is assigned."),
    Opt("sample_seed", int, default_of(ScaleMapParams, "sample_seed"), help="--engine ray: seed of the sample."),
)
