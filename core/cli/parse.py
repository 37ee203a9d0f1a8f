"""Command-line values -> Params: every malformed value raises SieveError with one line
naming the option (the CLI prints it and exits 2)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Optional

from core.stages.cluster import DEFAULT_ASSIGN_NOISE, ClusterParams
from core.stages.dataset import TextSpec
from core.stages.embed import EmbedParams
from core.stages.ingest import IngestParams
from core.stages.project import ProjectParams
from core.store.workspace import SieveError

from .. import queries, workflows
from ..engines.local import MapParams
from ..selection import DEFAULT_CLUSTER_CHOICE, DEFAULT_SOFT_NOISE, SelectParams
from ..workflow_types import LOCAL


def ingest_params(o: SimpleNamespace, fmt: str | None) -> IngestParams:
    """IngestParams from ``data``, ``text``/``template``, ``vectors``, ``delimiter``, ``encoding``
    and the input format ``fmt``; SieveError when neither --text nor --template is given."""
    if o.text is None and o.template is None:
        raise SieveError("give --text COLUMN or --template '{col1}\\n{col2}'")
    spec = TextSpec(column=o.text, template=queries.template_text(o.template) if o.template is not None else None)
    return IngestParams(str(o.data), spec, o.vectors, fmt, delimiter=o.delimiter, encoding=o.encoding)


def embed_params(o: SimpleNamespace) -> EmbedParams:
    """EmbedParams from ``model``, ``batch_size``, ``device``, ``backend`` and ``long_text`` (not resolved)."""
    return EmbedParams(model=o.model, batch_size=o.batch_size, device=o.device, backend=o.backend,
                       long_text=o.long_text)


def project_params(o: SimpleNamespace, seed: int) -> ProjectParams:
    """ProjectParams from the UMAP options and the projection's ``seed``."""
    return ProjectParams(n_neighbors=o.n_neighbors, min_dist=o.min_dist, metric=o.metric, cluster_dims=o.dims,
                         seed=seed, exact=getattr(o, "exact", False))


def map_params(o: SimpleNamespace, seed: int) -> MapParams:
    """MapParams (embedding resolved to the backend that runs here) from the embed, UMAP
    and clustering options; ``seed`` is the projection's (--seed or --map-seed)."""
    return MapParams(
        embed_params(o).resolved(),
        project_params(o, seed),
        ClusterParams(min_cluster_size=o.min_cluster_size, min_samples=o.min_samples, algorithm=o.cluster_method,
                      assign_noise=None if getattr(o, "keep_noise", False) else getattr(o, "assign_noise",
                                                                                       DEFAULT_ASSIGN_NOISE)),
    )


def parse_overrides(items: list[str] | None) -> dict[int, int]:
    """``--override CLUSTER=ROWS`` values -> {cluster: rows}."""
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


def parse_ids(text: Optional[str], what: str) -> tuple[int, ...]:
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


def parse_strata_bounds(items: list[str] | None) -> dict[str, tuple[int | None, int | None]]:
    """``--strata-bound STRATUM=MIN:MAX`` values -> {stratum: (min, max)} (None: no bound)."""
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


def _resolved(path: str | None) -> str | None:
    return str(Path(path).expanduser().resolve()) if path else None


def soft_noise(o: SimpleNamespace) -> float | None:
    """SelectParams.soft_noise_threshold of ``--soft-noise`` / ``--no-soft-noise``: the value given,
    else DEFAULT_SOFT_NOISE where the engine runs soft noise (workflows.recipe_default; the Ray
    engine's maps have no soft membership: off there, and refused by name when asked for) and
    ``--noise`` is ``include`` (with ``exclude`` or a noise budget: off unless given)."""
    if o.no_soft_noise:
        if o.soft_noise is not None:
            raise SieveError("--soft-noise and --no-soft-noise contradict each other; give one")
        return None
    if o.soft_noise is not None:
        return o.soft_noise
    if str(getattr(o, "noise", "include")) != "include":  # --noise exclude / a noise budget: the user said
        return None  # what the unclustered rows get, so the recipe does not move them into clusters first
    return workflows.recipe_default(getattr(o, "engine", LOCAL), "soft_noise_threshold", DEFAULT_SOFT_NOISE)


def cluster_choice(o: SimpleNamespace) -> str:
    """SelectParams.cluster_choice of ``--cluster-choice``: the value given, else
    DEFAULT_CLUSTER_CHOICE where the engine runs it (workflows.recipe_default)."""
    if o.cluster_choice is not None:
        return o.cluster_choice
    return workflows.recipe_default(getattr(o, "engine", LOCAL), "cluster_choice", DEFAULT_CLUSTER_CHOICE)


def depth_fields(o: SimpleNamespace) -> dict:
    """The SelectParams fields of the selection-depth options (dedup, tokens, strata,
    reference, target); empty when the command has none of them."""
    if not hasattr(o, "dedup"):
        return {}
    ref = o.reference
    return dict(
        dedup=o.dedup, near_dup_threshold=o.near_dup, mmr_lambda=o.mmr_lambda,
        soft_noise_threshold=soft_noise(o), budget_unit=o.budget_unit, tokenizer=o.tokenizer,
        strata_column=o.strata, strata_bounds=parse_strata_bounds(o.strata_bound),
        reference_path=_resolved(ref), reference_text=o.reference_text, coverage_distance=o.coverage_distance,
        leakage=o.leakage if ref else ("off" if o.leakage == "warn" else o.leakage),
        leakage_threshold=o.leakage_threshold, target_path=_resolved(o.target), target_text=o.target_text or "text",
        cluster_choice=cluster_choice(o),
    )


def select_params(o: SimpleNamespace) -> SelectParams:
    """SelectParams from the selection options (and the depth options when the command has them)."""
    noise: str | int = o.noise
    if o.noise not in ("include", "exclude"):
        try:
            noise = int(o.noise)
        except ValueError as exc:
            raise SieveError(f"--noise must be include, exclude or a row budget, got {o.noise!r}") from exc
    extra = depth_fields(o)
    return SelectParams(
        budget=o.budget, policy=o.policy, pick=o.pick, seed=o.seed, noise=noise, min_per_cluster=o.min_per_cluster,
        max_per_cluster=o.max_per_cluster, overrides=parse_overrides(o.override),
        score_column=getattr(o, "score_column", None), score_ascending=getattr(o, "ascending", False),
        pins=parse_ids(o.pin, "pin"), bans=parse_ids(o.ban, "ban"), **extra,
    )
