"""The per-user cache of converted models (the int8 ONNX export, the static preview's table):
one folder per (model files, options), built atomically, checked by size on every load."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from importlib import metadata
from pathlib import Path
from typing import Callable, Sequence

from tokenizers import Tokenizer

from core.encoders.models import local_model_dir, model_files_hash, model_id
from core.store.artifacts import atomic_write_json, file_sha256
from core.store.workspace import SieveError, cache_root

META_FILE = "meta.json"


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in text.split("/")[-1])
    return keep[:40] or "model"


def artifact_dir(kind: str, model: str, options: dict, *, model_dir: Path | None = None) -> Path:
    """``<cache>/<kind>/<model slug>-<hash of model files + options>``."""
    mdir = model_dir or local_model_dir(model)
    digest = hashlib.sha256(
        json.dumps({"model": model_id(model), "files": model_files_hash(mdir), "options": options},
                   sort_keys=True).encode()
    ).hexdigest()[:16]
    return cache_root() / kind / f"{_slug(model_id(model))}-{digest}"


def verify_dir(path: Path, files: Sequence[str]) -> dict | None:
    """``meta.json`` of a complete cache folder, or None if it is missing or any of
    ``files`` is absent or differs in size from what ``meta.json`` recorded."""
    try:
        meta = json.loads((path / META_FILE).read_text())
        sizes = meta["sizes"]
        for name in files:
            if (path / name).stat().st_size != sizes[name]:
                return None
        return meta
    except (OSError, ValueError, KeyError, TypeError):
        return None


def build_atomically(final: Path, files: Sequence[str], build: Callable[[Path], dict]) -> dict:
    """Build a cache folder in a temp sibling (``build(tmp)`` writes ``files`` and
    returns extra meta), record sizes and digests in ``meta.json`` (last), then rename
    it into place.  If another process won the race, its folder is used.  A broken
    folder at ``final`` (no or bad ``meta.json``) is replaced."""
    meta = verify_dir(final, files)
    if meta is not None:
        return meta
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        extra = build(tmp)
        meta = dict(extra)
        meta["sizes"] = {name: (tmp / name).stat().st_size for name in files}
        meta["sha256"] = {name: file_sha256(tmp / name) for name in files}
        meta["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        atomic_write_json(tmp / META_FILE, meta)
        if final.exists() and verify_dir(final, files) is None:
            shutil.rmtree(final, ignore_errors=True)  # a broken earlier attempt
        try:
            os.rename(tmp, final)
        except OSError:
            won = verify_dir(final, files)  # another process finished first
            if won is None:
                raise
            return won
        return meta
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def export_versions() -> dict:
    """The installed versions that shape the exported graph, read from the package
    metadata: importing torch and transformers only to read them cost ~6 s of every
    warm model load (the same strings as their ``__version__``)."""
    return {name: metadata.version(name) for name in ("torch", "transformers", "onnxruntime")}


def load_sentence_transformer(model_dir: Path):
    """The sentence-transformers model in ``model_dir`` on the CPU, offline.  Raises SieveError
    when it cannot be loaded."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(str(model_dir), device="cpu")
    except Exception as exc:  # noqa: BLE001
        raise SieveError(f"model {model_dir} could not be loaded for the ONNX export "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from exc


def st_parts(st) -> tuple[object, str, int, object]:
    """(transformer module, pooling mode 'mean'|'cls', max_seq_length, tokenizer) of a
    plain sentence-transformers model (Transformer -> Pooling [-> Normalize])."""
    mods = list(st)
    names = [type(m).__name__ for m in mods]
    if not names or names[0] != "Transformer" or len(names) < 2 or names[1] != "Pooling" \
            or any(n != "Normalize" for n in names[2:]):
        raise SieveError(f"backend 'onnx-int8'/'static' supports Transformer+Pooling models; this one is {names}; "
                         "use backend 'torch'")
    pool = mods[1]
    cfg = pool.get_config_dict() if hasattr(pool, "get_config_dict") else {}
    mode = getattr(pool, "pooling_mode", None) or ("cls" if cfg.get("pooling_mode_cls_token") else
                                                   "mean" if cfg.get("pooling_mode_mean_tokens") else None)
    if mode in ("mean_tokens",):
        mode = "mean"
    if mode in ("cls_token",):
        mode = "cls"
    if mode not in ("mean", "cls"):
        raise SieveError(f"backend 'onnx-int8' supports mean or CLS pooling, not {mode!r}; use backend 'torch'")
    max_len = int(getattr(st, "max_seq_length", None) or getattr(mods[0], "max_seq_length", 512) or 512)
    return mods[0], mode, max_len, st.tokenizer


def fast_tokenizer_json(tokenizer, max_len: int) -> str:
    """The model's fast tokenizer as JSON, without fixed padding, truncating at ``max_len``."""
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is None:
        raise SieveError("backend 'onnx-int8'/'static' needs a fast (Rust) tokenizer; use backend 'torch'")
    tok = Tokenizer.from_str(backend.to_str())
    tok.no_padding()
    tok.enable_truncation(max_length=max_len)
    return tok.to_str()
