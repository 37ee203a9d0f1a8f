"""The extra inputs a selection may need, computed once and cached in the workspace:
normalised-text keys (exact duplicates), duplicate groups, token counts, the strata
column, reference vectors and each row's similarity to the reference set.

Each is an artifact keyed by what it depends on, so the app's reruns and the CLI's
next command reuse it; all are aligned with ``MapData.row_ids``.  ``data`` is the map
(:class:`core.engines.local.MapData`); ``embed`` is the map's embedding parameters (``.model``,
``.device``), passed by the caller when ``data.params`` is not recorded.
"""

from __future__ import annotations

import hashlib

import numpy as np

from core.stages.dataset import load_column, load_texts
from core.store.artifacts import stage_key
from core.store.workspace import SieveError, Workspace

from ..nn import max_sim
from .candidates import effective_labels
from .dedup import find_groups
from .dedup import text_keys as keys_of
from .params import MISSING_STRATUM
from .reference import reference_vectors as ref_vectors
from .tokens import count_tokens, tokenizer_id


def cached_array(ws: Workspace, stage: str, key: str, name: str, compute, meta: dict | None = None) -> np.ndarray:
    """The array ``name`` of artifact (``stage``, ``key``), computed by ``compute()`` and saved
    when missing or unreadable."""
    if ws.has_artifact(stage, key):
        try:
            arrays, _ = ws.load_artifact(stage, key, mmap=False)
            return np.asarray(arrays[name])
        except (SieveError, KeyError, OSError, ValueError):
            pass  # recompute below
    arr = compute()
    ws.save_artifact(stage, key, {name: arr}, meta or {})
    return arr


def dataset_texts(ws: Workspace, data) -> list[str]:
    """The map's texts, in map order.  Raises SieveError when the dataset changed since the map."""
    ids, texts, _ = load_texts(ws)
    if not np.array_equal(np.asarray(ids), np.asarray(data.row_ids)):
        raise SieveError("the dataset changed since the map was computed; compute the map again")
    return texts


def text_keys(ws: Workspace, data) -> np.ndarray:
    """Normalised-text hash per map row, (n,) uint64."""
    key = stage_key("textkeys", {"version": 1}, data.dataset.key)
    return cached_array(ws, "textkeys", key, "keys", lambda: keys_of(dataset_texts(ws, data)),
                        {"parent": data.dataset.key})


def map_model(data, embed=None) -> tuple[str, str]:
    """(model name, device) the map's embeddings came from: ``embed`` if given, else the map's
    recorded parameters.  Raises SieveError when neither is known."""
    if embed is None and data.params is not None:
        embed = data.params.embed
    if embed is None:
        raise SieveError("this map has no recorded parameters (which model embedded it?); compute the map again")
    return embed.model, embed.device


def token_counts(ws: Workspace, data, tokenizer: str, embed=None) -> np.ndarray:
    """Tokens per map row, (n,) int64 (``tokenizer``: 'model' = the map's embedding model's
    tokenizer, or 'words')."""
    model = map_model(data, embed)[0] if tokenizer == "model" else ""
    tid = tokenizer_id(tokenizer, model)
    key = stage_key("tokens", {"tokenizer": tid}, data.dataset.key)
    return cached_array(ws, "tokens", key, "counts", lambda: count_tokens(dataset_texts(ws, data), tokenizer, model),
                        {"parent": data.dataset.key, "tokenizer": tid})


def strata_values(ws: Workspace, column: str, row_ids: np.ndarray) -> np.ndarray:
    """The strata column per row as strings (missing values -> '(missing)'), (n,) object.
    Raises SieveError naming strata_column for a missing column or nested values."""
    try:
        col = load_column(ws, column, np.asarray(row_ids))
    except SieveError as exc:
        raise SieveError(f"strata_column: {exc}") from exc
    vals = col.to_pylist()
    if vals and isinstance(next((v for v in vals if v is not None), None), (list, dict)):
        raise SieveError(f"strata_column {column!r} holds nested values; choose a column of plain values")
    return np.asarray([MISSING_STRATUM if v is None else str(v) for v in vals], dtype=object)


def duplicate_groups(ws: Workspace, data, params) -> np.ndarray:
    """Duplicate-group id per map row, (n,) int64, for ``params.dedup`` ('exact' or 'near')."""
    near = params.dedup == "near"
    spec = {"mode": params.dedup, "version": 1}
    parent = data.dataset.key
    if near:
        spec.update(threshold=params.near_dup_threshold, soft=params.soft_noise_threshold, seed=params.seed,
                    cluster=data.keys.cluster)
        parent = data.keys.embed
    key = stage_key("dedup", spec, parent)

    def compute():
        keys = text_keys(ws, data)
        labels, _ = effective_labels(data.labels, data.soft_labels, data.soft_strength, params.soft_noise_threshold)
        return find_groups(labels, keys=keys, vectors=data.vectors if near else None, near=near,
                           threshold=params.near_dup_threshold, seed=params.seed)

    return cached_array(ws, "dedup", key, "groups", compute, {"spec": spec})


def _set_vectors(ws: Workspace, data, which: str, path: str, text: str, encoder, embed) -> np.ndarray:
    """A reference-like set (``path``, column ``text``) embedded with the map's model, (r, d)
    float32; ``which`` ('reference' or 'target') names the parameters in errors."""
    if data.dataset.vector_column:
        raise SieveError(f"{which}_path: this map uses precomputed vectors (column {data.dataset.vector_column!r}); "
                         f"a {which} set can only be embedded with a model")
    model, device = map_model(data, embed)
    normalize = data.params.embed.normalize if data.params is not None else True
    try:
        return ref_vectors(ws, path, text, model, encoder=encoder, normalize=normalize, device=device)
    except SieveError as exc:  # its messages name the reference parameters
        msg = str(exc).replace("reference_path", f"{which}_path").replace("reference_text", f"{which}_text")
        raise SieveError(msg) from exc


def reference_vectors(ws: Workspace, data, params, encoder=None, embed=None) -> np.ndarray:
    """The reference set (``params.reference_path``) embedded with the map's model, (r, d) float32.
    Raises SieveError for a map of precomputed vectors or an unreadable file."""
    return _set_vectors(ws, data, "reference", params.reference_path, params.reference_text, encoder, embed)


def reference_sims(ws: Workspace, data, reference: np.ndarray, seed: int) -> np.ndarray:
    """Each map row's highest cosine similarity to a reference row, (n,) float32 (core.nn.max_sim),
    cached as an artifact keyed by the map's embeddings, the reference vectors and the seed."""
    ref_key = hashlib.sha256(np.ascontiguousarray(reference, dtype=np.float32).tobytes()).hexdigest()
    key = stage_key("refsims", {"reference": ref_key, "seed": int(seed)}, data.keys.embed)
    return cached_array(ws, "refsims", key, "sims", lambda: max_sim(data.vectors, reference, seed=seed)[0],
                        {"parent": data.keys.embed})


def target_positions(ws: Workspace, data, params, encoder=None, embed=None) -> np.ndarray:
    """For each row of ``params.target_path`` (embedded with the map's model, cached like a
    reference set): the position of its nearest map row (cosine; core.nn.max_sim), (t,) int64."""
    vecs = _set_vectors(ws, data, "target", params.target_path, params.target_text, encoder, embed)
    return max_sim(vecs, data.vectors, seed=params.seed)[1]
