"""The extra inputs a selection may need, computed once and cached in the workspace:
normalised-text keys (exact duplicates), duplicate groups, token counts, the strata
column, reference vectors and each row's similarity to the reference set.

Each is an artifact keyed by what it depends on, so the app's reruns and the CLI's
next command reuse it; all are aligned with ``MapData.row_ids``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from core.store.workspace import SieveError, Workspace
from core.store.artifacts import stage_key

_MEMO: "OrderedDict[tuple, np.ndarray]" = OrderedDict()
_MEMO_LOCK = threading.Lock()
_MEMO_MAX = 8


def _memo(key: tuple, fn):
    with _MEMO_LOCK:
        if key in _MEMO:
            _MEMO.move_to_end(key)
            return _MEMO[key]
    value = fn()
    with _MEMO_LOCK:
        _MEMO[key] = value
        while len(_MEMO) > _MEMO_MAX:
            _MEMO.popitem(last=False)
    return value


def _cached_array(ws: Workspace, stage: str, key: str, name: str, compute, meta: dict | None = None) -> np.ndarray:
    def load():
        if ws.has_artifact(stage, key):
            try:
                arrays, _ = ws.load_artifact(stage, key, mmap=False)
                return np.asarray(arrays[name])
            except (SieveError, KeyError, OSError, ValueError):
                pass  # recompute below
        arr = compute()
        ws.save_artifact(stage, key, {name: arr}, meta or {})
        return arr

    return _memo((str(ws.root), stage, key), load)


def _texts(ws: Workspace, data) -> list[str]:
    from core.stages.dataset import load_texts

    row_ids, texts, _ = load_texts(ws)
    if not np.array_equal(np.asarray(row_ids), np.asarray(data.row_ids)):
        raise SieveError("the dataset changed since the map was computed; compute the map again")
    return texts


def text_keys(ws: Workspace, data) -> np.ndarray:
    """Normalised-text hash per map row."""
    from .dedup import text_keys as keys_of

    key = stage_key("textkeys", {"version": 1}, data.dataset.key)
    return _cached_array(ws, "textkeys", key, "keys", lambda: keys_of(_texts(ws, data)), {"parent": data.dataset.key})


def map_model(ws: Workspace, data) -> tuple[str, str]:
    """(model name, device) the map's embeddings came from."""
    params = data.params
    if params is None:
        from .pipeline import map_by_label

        params = map_by_label(ws, data.keys.label)[1]
    return params.embed.model, params.embed.device


def token_counts(ws: Workspace, data, tokenizer: str) -> np.ndarray:
    """Tokens per map row (``tokenizer``: 'model' = the map's embedding model's tokenizer, or 'words')."""
    from .tokens import count_tokens, tokenizer_id

    model = map_model(ws, data)[0] if tokenizer == "model" else ""
    tid = tokenizer_id(tokenizer, model)
    key = stage_key("tokens", {"tokenizer": tid}, data.dataset.key)
    return _cached_array(ws, "tokens", key, "counts",
                         lambda: count_tokens(_texts(ws, data), tokenizer, model),
                         {"parent": data.dataset.key, "tokenizer": tid})


def strata_values(ws: Workspace, column: str, row_ids: np.ndarray) -> np.ndarray:
    """The strata column per row as strings (missing values -> '(missing)')."""
    from core.stages.dataset import load_column
    from .select import MISSING_STRATUM

    try:
        col = load_column(ws, column, np.asarray(row_ids))
    except SieveError as exc:
        raise SieveError(f"strata_column: {exc}") from exc
    vals = col.to_pylist()
    if vals and isinstance(next((v for v in vals if v is not None), None), (list, dict)):
        raise SieveError(f"strata_column {column!r} holds nested values; choose a column of plain values")
    return np.asarray([MISSING_STRATUM if v is None else str(v) for v in vals], dtype=object)


def duplicate_groups(ws: Workspace, data, params) -> np.ndarray:
    """Duplicate-group id per map row for ``params.dedup`` ('exact' or 'near')."""
    from .dedup import find_groups
    from .select import effective_labels

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

    return _cached_array(ws, "dedup", key, "groups", compute, {"spec": spec})


def reference_vectors(ws: Workspace, data, params, encoder=None) -> np.ndarray:
    from .reference import reference_vectors as ref_vectors

    if data.dataset.vector_column:
        raise SieveError(f"reference_path: this map uses precomputed vectors (column {data.dataset.vector_column!r}); "
                         "a reference set can only be embedded with a model")
    model, device = map_model(ws, data)
    normalize = True
    if data.params is not None:
        normalize = data.params.embed.normalize
    return ref_vectors(ws, params.reference_path, params.reference_text, model, encoder=encoder,
                       normalize=normalize, device=device)


def reference_sims(ws: Workspace, data, reference: np.ndarray, seed: int) -> np.ndarray:
    """Each map row's highest cosine similarity to a reference row (cached in memory)."""
    import hashlib

    from .nn import max_sim

    ref_key = hashlib.sha256(np.ascontiguousarray(reference, dtype=np.float32).tobytes()).hexdigest()
    return _memo((str(ws.root), "refsims", data.keys.embed, ref_key, seed),
                 lambda: max_sim(data.vectors, reference, seed=seed)[0])


def target_positions(ws: Workspace, data, params, encoder=None) -> np.ndarray:
    """For each row of ``params.target_path`` (embedded with the map's model, cached like a
    reference set): the position of its nearest map row (cosine; core.nn.max_sim)."""
    from .nn import max_sim
    from .reference import reference_vectors as ref_vectors

    if data.dataset.vector_column:
        raise SieveError(f"target_path: this map uses precomputed vectors (column {data.dataset.vector_column!r}); "
                         "a target set can only be embedded with a model")
    model, device = map_model(ws, data)
    normalize = data.params.embed.normalize if data.params is not None else True
    try:
        vecs = ref_vectors(ws, params.target_path, params.target_text, model, encoder=encoder, normalize=normalize,
                           device=device)
    except SieveError as exc:  # its messages name the reference parameters
        msg = str(exc).replace("reference_path", "target_path").replace("reference_text", "target_text")
        raise SieveError(msg) from exc
    return max_sim(vecs, data.vectors, seed=params.seed)[1]
