"""Embed: texts -> float32 vectors with sentence-transformers (or a precomputed column).

Pure part: :func:`embed_texts` (length-sorted batches through any :class:`Encoder`).
I/O part: :func:`run_embed` caches vectors by (model, text hash) in chunks, so a
re-run computes nothing and an interrupted run resumes where it stopped.

Backends (``EmbedParams.backend``):

- ``"torch"``: sentence-transformers as is (exact fp32 on the CPU, fp16 on CUDA).
- ``"onnx-int8"``: the model exported locally to ONNX and quantized per channel to
  int8 (:mod:`core.encoders.onnx`); CPU only; median cosine ~0.99 to fp32.
- ``"static"``: a preview, token vectors distilled from the model
  (:mod:`core.encoders.static`); tens of times faster, coarser clusters.
- ``"auto"`` (the default) resolves to ``"onnx-int8"`` on the CPU when onnxruntime
  is importable, else ``"torch"`` (always ``"torch"`` on CUDA/MPS).  What is
  recorded (artifact meta, map record, manifest) is the *resolved* backend; a params
  dict without ``backend`` (older manifests) means ``"torch"``.

Each backend names its vectors with its own model id (``"<model id>#onnx-int8"``,
``"<model id>#static"``; torch keeps the bare model id), so the cache key and the
embed artifact never mix vectors of two backends.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa

from core.encoders import long_text as lt
from core.encoders.base import BACKENDS, DEVICES, Encoder
from core.encoders.models import DEFAULT_MODEL, backend_model_id
from core.encoders.registry import load_encoder, resolve_backend
from core.encoders.torch import DEFAULT_BATCH_SIZE, effective_batch_size
from core.stages.base import StageResult, stage_result
from core.stages.dataset import current_dataset, load_texts
from core.stages.embed_cache import embed_with_cache, hash_list, length_order
from core.store.artifacts import stable_hash, stage_key
from core.store.sql import quote_ident
from core.store.workspace import DATASET_TABLE, SieveError, Workspace, fetch_arrow

Progress = Callable[[int, int, str], None]
CancelCheck = Callable[[], bool]


class Cancelled(Exception):
    """Raised between batches when the caller asked to stop; finished chunks are kept."""


@dataclass(frozen=True)
class EmbedParams:
    """Which model embeds the texts and how (batch size, device, normalisation, chunking,
    backend, long-text mode); validated on creation (SieveError)."""
    model: str = DEFAULT_MODEL
    batch_size: int = DEFAULT_BATCH_SIZE
    device: str = "auto"
    normalize: bool = True
    chunk_size: int = 2048  # rows per resumable chunk
    backend: str = "auto"  # auto | torch | onnx-int8 | static (see the module docstring)
    long_text: str = "truncate"  # truncate | chunk: texts over the model's token limit (core.encoders.long_text)

    def __post_init__(self):
        if not isinstance(self.model, str) or not self.model.strip():
            raise SieveError("model must be a sentence-transformers model name or a local path")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise SieveError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if not isinstance(self.chunk_size, int) or self.chunk_size < 1:
            raise SieveError(f"chunk_size must be a positive integer, got {self.chunk_size!r}")
        if not isinstance(self.normalize, bool):
            raise SieveError(f"normalize must be true or false, got {self.normalize!r}")
        if self.device not in DEVICES:
            raise SieveError(f"device must be one of {DEVICES}, got {self.device!r}")
        if self.backend not in BACKENDS:
            raise SieveError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        lt.check_mode(self.long_text)
        if self.backend in ("onnx-int8", "static") and self.device in ("cuda", "mps"):
            raise SieveError(f"backend {self.backend!r} runs on the CPU only; use backend 'torch' "
                             f"(or 'auto') with device {self.device!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "EmbedParams":
        """Params from a manifest/map record; without ``backend`` (written before
        backends existed) the backend is ``"torch"``, and without ``long_text`` the
        long-text mode is ``"truncate"``: the old behaviour."""
        d = dict(d)
        d.setdefault("backend", "torch")
        d.setdefault("long_text", "truncate")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    def resolved(self, encoder: "Encoder | None" = None) -> "EmbedParams":
        """These params with ``backend="auto"`` replaced by the backend that will run
        (with an ``encoder``, the backend it declares, if any)."""
        if encoder is not None:
            # An encoder without a declared backend (e.g. a custom one) names its vectors by
            # its plain model id, which is what the torch backend does.
            b = getattr(encoder, "backend", None)
            b = b if b in BACKENDS and b != "auto" else "torch"
            return replace(self, backend=b) if b != self.backend else self
        if self.backend != "auto":
            return self
        return replace(self, backend=resolve_backend(self.backend, self.device))


# -- pure compute -----------------------------------------------------------------


def embed_texts(
    texts: Sequence[str],
    encoder: Encoder,
    batch_size: int = 64,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    progress_offset: int = 0,
    progress_total: int | None = None,
) -> np.ndarray:
    """Embed ``texts`` in length-sorted batches; rows come back in input order.

    An encoder with ``prefetch`` true (sentence-transformers on CUDA) and
    ``tokenize``/``encode_tokenized`` gets the next batch tokenized on one helper
    thread while the current batch computes."""
    n = len(texts)
    out = np.empty((n, encoder.dim), dtype=np.float32)
    order = length_order(texts)
    total = progress_total if progress_total is not None else n
    starts = list(range(0, n, batch_size))
    prefetch = bool(getattr(encoder, "prefetch", False)) and hasattr(encoder, "tokenize") \
        and hasattr(encoder, "encode_tokenized") and len(starts) > 1
    pool = pending = None
    if prefetch:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sieve-tokenize")

        def batch_texts(start):
            return [texts[i] for i in order[start : start + batch_size]]

        pending = pool.submit(encoder.tokenize, batch_texts(starts[0]))
    try:
        for k, start in enumerate(starts):
            if cancel is not None and cancel():
                raise Cancelled("embedding cancelled; finished chunks are kept and a re-run resumes")
            idx = order[start : start + batch_size]
            if prefetch:
                features = pending.result()
                if k + 1 < len(starts):
                    pending = pool.submit(encoder.tokenize, batch_texts(starts[k + 1]))
                vecs = encoder.encode_tokenized(features)
            else:
                vecs = encoder.embed([texts[i] for i in idx])
            if vecs.shape != (len(idx), encoder.dim):
                raise SieveError(f"encoder {encoder.model_id} returned shape {vecs.shape}, "
                                 f"expected {(len(idx), encoder.dim)}")
            out[idx] = vecs
            if progress:
                progress(progress_offset + min(start + batch_size, n), total, "embedding")
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return out


# -- I/O wrapper with the (model, text hash) cache ----------------------------------


@dataclass
class EmbedResult:
    """The embedding artifact's key, model id, width, row count, how many texts were computed
    (0: all cached) and the long-text counts."""
    key: str
    model_id: str
    dim: int
    n_rows: int
    n_computed: int
    cached: bool
    long_texts: dict | None = None  # core.encoders.long_text.LongTextCount.to_dict() (None: precomputed vectors)

    def long_text_message(self, mode: str | None = None) -> str | None:
        """One line about texts over the model's limit or the cell cap, or None."""
        return lt.LongTextCount(**self.long_texts).message(mode) if self.long_texts else None


def embed_key(ws: Workspace, params: EmbedParams, encoder: Encoder | None = None) -> tuple[str, str]:
    """(artifact key, model id) for the current dataset and these params.  With an
    ``encoder``, its own ``model_id`` names the vectors (not ``params.model``); else
    the (resolved) backend's model id does, so two backends never share a key."""
    info = current_dataset(ws)
    if info.vector_column:
        mid = f"column:{info.vector_column}"
    elif encoder is not None:
        mid = encoder.model_id
    else:
        mid = backend_model_id(params.model, resolve_backend(params.backend, params.device))
    return stage_key("embed", {"model": mid, "normalize": params.normalize, **long_text_key(params)}, info.key), mid


def long_text_key(params: EmbedParams) -> dict:
    """What the long-text choice adds to the cache keys: nothing for ``truncate`` (so keys
    of older workspaces and manifests stay valid), the mode and the cell cap for ``chunk``."""
    if params.long_text == "truncate":
        return {}
    return {"long_text": params.long_text, "max_text_chars": lt.max_text_chars()}


def encoder_limit(encoder: Encoder, model: str) -> tuple["lt.TokenLimit | None", bool]:
    """(token limit, limited) for ``encoder``: the model's tokenizer with the encoder's own
    ``max_seq_length`` when it declares one; ``limited`` is False for an encoder whose
    ``max_seq_length`` is None (the static preview reads every token)."""
    enc_max = getattr(encoder, "max_seq_length", 0)
    if enc_max is None:
        return lt.model_limit(model), False
    lim = lt.model_limit(model)
    if lim is not None and enc_max and int(enc_max) != lim.max_seq_length:
        lim = replace(lim, max_seq_length=int(enc_max))
    return lim, True


def run_embed(
    ws: Workspace,
    params: EmbedParams = EmbedParams(),
    *,
    encoder: Encoder | None = None,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
) -> EmbedResult:
    """Embed the current dataset's texts (or read its vector column) into an ``embed`` artifact:
    vectors (n, dim) float32 and row_ids (n,) int64.  Texts already in the (model, text)
    cache are not recomputed.  Raises SieveError (bad model, vectors), Cancelled."""
    with ws.lock("embedding"):
        info = current_dataset(ws)
        if not info.vector_column:
            params = params.resolved(encoder)  # what is recorded names the backend that ran
        key, mid = embed_key(ws, params, encoder)
        if ws.has_artifact("embed", key):
            _, meta = ws.load_artifact("embed", key)
            return EmbedResult(key, meta["model_id"], meta["dim"], meta["n_rows"], 0, True, meta.get("long_texts"))

        row_ids, texts, hashes = load_texts(ws)
        counts = None
        if info.vector_column:
            vectors = _vectors_from_column(ws, info.vector_column, params.normalize)
            n_computed = 0
        else:
            if encoder is None:
                encoder = load_encoder(params=params, progress=progress)
                if encoder.model_id != mid:  # the key must name the model that made the vectors
                    key, mid = embed_key(ws, params, encoder)
            lim, limited = encoder_limit(encoder, params.model)
            counts = lt.count_long(texts, lim).to_dict()
            if not limited:
                counts["note"] = f"backend {params.backend!r} reads every token (no limit)"
            dev = getattr(encoder, "device", "cpu")
            run_params = replace(params, batch_size=effective_batch_size(params.batch_size, dev))
            vectors, n_computed = _cached_vectors(ws, texts, hashes, encoder, run_params, progress, cancel,
                                                  (lim, limited))
        ws.save_artifact(
            "embed",
            key,
            {"vectors": vectors, "row_ids": row_ids},
            {"parent": info.key, "model_id": mid, "dim": int(vectors.shape[1]), "n_rows": int(len(row_ids)),
             "params": params, "input_hash": hash_list(hashes), "long_texts": counts},
        )
        return EmbedResult(key, mid, int(vectors.shape[1]), int(len(row_ids)), n_computed, False, counts)


def load_embeddings(ws: Workspace, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(row_ids (n,) int64, vectors (n, dim) float32, memory-mapped) of the artifact ``key``."""
    arrays, _ = ws.load_artifact("embed", key)
    return arrays["row_ids"], arrays["vectors"]


def _vectors_from_column(ws: Workspace, column: str, normalize: bool) -> np.ndarray:
    with ws.connect() as con:
        tbl = fetch_arrow(
            con,
            f"SELECT sieve_row_id, {quote_ident(column)}::DOUBLE[] FROM {DATASET_TABLE} WHERE sieve_text_ok "
            "ORDER BY sieve_row_id"
        )
    return precomputed_vectors(tbl.column(0).to_numpy(), tbl.column(1), column, normalize)


def precomputed_vectors(row_ids, values, column: str, normalize: bool) -> np.ndarray:
    """(n, d) float32 vectors from a list column of n numbers lists (any float width).

    Normalised in float64 after dividing each row by its largest absolute value, so
    norms that overflow (3e19: the sum of squares is 9e38 > float32's max) or underflow
    (1e-30) still give unit vectors.  Raises SieveError naming ``column`` and the row
    (``sieve_row_id``) for a zero vector, a non-finite value, or (without ``normalize``)
    a value float32 cannot hold or a row that becomes all zeros in float32."""
    col = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    n = len(col)
    if n == 0:
        return np.zeros((0, 0), np.float32)
    vecs = col.flatten().to_numpy(zero_copy_only=False).astype(np.float64).reshape(n, -1)
    ids = np.asarray(row_ids)

    def refuse(mask, what):
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            raise SieveError(f"vector column {column!r} has {what} at row {int(ids[i])} "
                             f"({int(mask.sum())} row(s) in all); fix or drop those rows")

    refuse(~np.isfinite(vecs).all(axis=1), "a NaN or infinite value")
    scale = np.abs(vecs).max(axis=1, keepdims=True)
    refuse(scale[:, 0] == 0, "an all-zero vector (no direction)")
    if normalize:
        vecs = vecs / scale
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        return np.ascontiguousarray(vecs, dtype=np.float32)
    refuse(scale[:, 0] > np.finfo(np.float32).max, "a value beyond float32's range (|x| > 3.4e38)")
    out = vecs.astype(np.float32)
    refuse(~out.any(axis=1), "a vector whose values all underflow float32 (|x| < 1e-45)")
    return np.ascontiguousarray(out)


def embed_prepared(texts: Sequence[str], encoder: Encoder, params: EmbedParams, limit, *,
                   progress: Progress | None = None, cancel: CancelCheck | None = None,
                   progress_offset: int = 0, progress_total: int | None = None) -> np.ndarray:
    """(n, dim) float32 vectors of ``texts`` under ``params.long_text``: each text capped at
    the cell cap, then clipped before tokenising (truncate) or split into overlapping
    token windows whose vectors are mean-pooled (chunk); see :mod:`core.encoders.long_text`.
    ``limit`` is ``(TokenLimit | None, limited)`` from :func:`encoder_limit`."""
    lim, limited = limit
    prep = lt.prepare(texts, params.long_text, lim, limited=limited)
    scale = len(texts) / max(1, len(prep.inputs))
    prog = None
    if progress is not None:
        total = progress_total if progress_total is not None else len(texts)

        def prog(done, _total, msg):
            progress(progress_offset + int(round((done - progress_offset) * scale)), total, msg)

    vecs = embed_texts(prep.inputs, encoder, params.batch_size, progress=prog, cancel=cancel,
                       progress_offset=progress_offset, progress_total=len(prep.inputs))
    return prep.pool(vecs, params.normalize)


def _cached_vectors(ws, texts, hashes, encoder: Encoder, params: EmbedParams, progress, cancel, limit):
    """:func:`core.stages.embed_cache.embed_with_cache` with this encoder and long-text mode."""
    model_key = stable_hash({"model": encoder.model_id, "normalize": params.normalize, **long_text_key(params)})

    def compute(chunk_texts, offset, total):
        return embed_prepared(chunk_texts, encoder, params, limit, progress=progress, cancel=cancel,
                              progress_offset=offset, progress_total=total)

    return embed_with_cache(ws, texts, hashes, model_key, encoder.dim, params.chunk_size, compute, progress)


def run(ws: Workspace, inputs: None = None, params: EmbedParams = EmbedParams(), *, encoder: Encoder | None = None,
        progress: Progress | None = None, cancel: CancelCheck | None = None) -> StageResult:
    """:func:`run_embed` as a :class:`core.stages.base.StageResult` (``inputs``: unused, the
    stage reads the current dataset)."""
    res = run_embed(ws, params, encoder=encoder, progress=progress, cancel=cancel)
    return stage_result(ws, "embed", res.key, res.cached)
