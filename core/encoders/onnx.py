"""The "onnx-int8" embedding backend: the sentence-transformers model exported locally
to ONNX (torch's TorchScript exporter, no download), fused by ONNX Runtime's
transformer optimizer and quantized to int8 with per-channel dynamic quantization.

Measured on all-MiniLM-L6-v2 (see ``bench/``): per-channel int8 keeps a median
cosine of about 0.993 to the fp32 vectors; per-tensor int8 falls to about 0.96, so
per-channel is the only option offered.

The exported model is cached on disk under the Sieve cache dir (``SIEVE_CACHE_DIR``,
default ``~/.cache/sieve``) in ``onnx/<name>-<hash>/``, where the hash covers the
model files, the export options and the library versions that shape the graph.  A
folder is built under a temporary name and renamed into place with ``meta.json``
written last, so a crash never leaves a half model; a folder whose files do not
match its ``meta.json`` is ignored and rebuilt.

Inference tokenizes with the model's fast tokenizer (no fixed padding: each batch
is padded to its longest text; truncation at the model's ``max_seq_length``), runs
one ONNX Runtime session (intra-op threads = usable cores, sequential execution),
and mean-pools (or CLS-pools) inside the graph exactly like sentence-transformers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from core.store.workspace import SieveError, atomic_write_json, cache_root, usable_cores

Progress = Callable[[int, int, str], None]

BACKEND = "onnx-int8"
EXPORT_VERSION = 1
OPSET = 17
# The quantization that passed the agreement bar (median cosine ~0.993 to fp32);
# per-tensor weights (per_channel=False) gave ~0.96, reduce_range was slower and no better.
QUANT_OPTIONS = {"weight_type": "QInt8", "per_channel": True, "reduce_range": False,
                 "op_types": ["MatMul", "Attention", "Gather", "EmbedLayerNormalization"]}
# Shown in the UI next to the backend choice.  Speed: texts/s vs one fp32
# SentenceTransformer.encode, on 19,934 ~20-word and 498 ~200-word generated prompts
# (python -m bench, quiet 2-core CPU, 2026-11-21; bench/RESULTS.md).  Agreement: median
# cosine there; cluster ARI vs the fp32 pipeline on sample_data/prompts.csv (tests/test_embed_fast.py).
ONNX_QUALITY = {
    "speedup_short": 2.24,
    "speedup_long": 2.17,
    "median_cosine": 0.9935,
    "ari_vs_fp32": 0.94,
    "measured_on": "a quiet 2-core CPU (bench/RESULTS.md); ARI on sample_data/prompts.csv",
}
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "meta.json"


# -- the cache dir ----------------------------------------------------------------


def model_files_hash(path: Path | str) -> str:
    """sha256 over the relative names and contents of every file of a model folder."""
    root = Path(path)
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts):
        h.update(str(f.relative_to(root)).encode())
        h.update(b"\x00")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        h.update(b"\x01")
    return h.hexdigest()


def local_model_dir(model: str) -> Path:
    """The folder holding ``model``'s files (the packaged default, a local path, or a
    model already in the Hugging Face cache); never downloads."""
    from core.stages.embed import resolve_model

    path = Path(resolve_model(model))
    if path.exists():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True))
    except Exception as exc:  # noqa: BLE001 - many hub exception types
        raise SieveError(
            f"model {model!r} is not a local folder nor in the Hugging Face cache ({type(exc).__name__}); "
            "give a local sentence-transformers folder"
        ) from exc


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in text.split("/")[-1])
    return keep[:40] or "model"


def artifact_dir(kind: str, model: str, options: dict, *, model_dir: Path | None = None) -> Path:
    """``<cache>/<kind>/<model slug>-<hash of model files + options>``."""
    from core.stages.embed import model_id

    mdir = model_dir or local_model_dir(model)
    digest = hashlib.sha256(
        json.dumps({"model": model_id(model), "files": model_files_hash(mdir), "options": options},
                   sort_keys=True).encode()
    ).hexdigest()[:16]
    return cache_root() / kind / f"{_slug(model_id(model))}-{digest}"


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
        meta["sha256"] = {name: _file_digest(tmp / name) for name in files}
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


# -- export -----------------------------------------------------------------------


def _versions() -> dict:
    """The installed versions that shape the exported graph, read from the package
    metadata: importing torch and transformers only to read them cost ~6 s of every
    warm model load (the same strings as their ``__version__``)."""
    from importlib import metadata

    return {name: metadata.version(name) for name in ("torch", "transformers", "onnxruntime")}


def _load_st(model_dir: Path):
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
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(backend.to_str())
    tok.no_padding()
    tok.enable_truncation(max_length=max_len)
    return tok.to_str()


def _export_target(model: str) -> tuple[Path, Path, dict]:
    """(local model folder, cache folder of its export, export options)."""
    mdir = local_model_dir(model)
    options = {"export_version": EXPORT_VERSION, "opset": OPSET, "quant": QUANT_OPTIONS, "versions": _versions()}
    return mdir, artifact_dir("onnx", model, options, model_dir=mdir), options


def is_exported(model: str = "all-MiniLM-L6-v2") -> bool:
    """True when the int8 export of ``model`` is in the cache (no one-time preparation
    left); False also when the model cannot be found."""
    try:
        return verify_dir(_export_target(model)[1], [MODEL_FILE, TOKENIZER_FILE]) is not None
    except (SieveError, OSError):
        return False


def export_onnx(model: str = "all-MiniLM-L6-v2", *, progress: Progress | None = None) -> Path:
    """The folder of the exported, quantized model (built once, then cached)."""
    mdir, final, options = _export_target(model)
    if verify_dir(final, [MODEL_FILE, TOKENIZER_FILE]) is not None:
        return final

    t0 = time.perf_counter()
    total = 4

    def step(i: int, msg: str):
        if progress is not None and (i == 0 or time.perf_counter() - t0 > 1.0):
            progress(i, total, msg)

    def build(tmp: Path) -> dict:
        step(0, "preparing the ONNX int8 model (one time): loading")
        st = _load_st(mdir)
        transformer, mode, max_len, tokenizer = st_parts(st)
        step(1, "preparing the ONNX int8 model (one time): exporting")
        fp32 = tmp / "fp32.onnx"
        info = _torch_export(transformer.auto_model, mode, fp32)
        step(2, "preparing the ONNX int8 model (one time): optimizing")
        fused = _ort_optimize(fp32, tmp / "fused.onnx", transformer.auto_model.config)
        step(3, "preparing the ONNX int8 model (one time): quantizing")
        _quantize(fused or fp32, tmp / MODEL_FILE)
        for f in (fp32, tmp / "fused.onnx"):
            if f.exists():
                f.unlink()
        (tmp / TOKENIZER_FILE).write_text(fast_tokenizer_json(tokenizer, max_len))
        step(4, "preparing the ONNX int8 model (one time): done")
        return {"model_id": _model_id(model), "pooling": mode, "max_seq_length": max_len, "options": options,
                "dim": int((getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension)()), "fused": fused is not None,
                "token_type_ids": info["token_type_ids"]}

    build_atomically(final, [MODEL_FILE, TOKENIZER_FILE], build)
    return final


def _model_id(model: str) -> str:
    from core.stages.embed import model_id

    return model_id(model)


def _torch_export(hf_model, mode: str, out: Path) -> dict:
    import inspect
    import warnings

    import torch

    hf_model = hf_model.eval()
    # Eager attention exports to the plain MatMul/Softmax pattern that ONNX Runtime's
    # optimizer fuses into one Attention op (SDPA exports do not fuse).
    set_attn = getattr(hf_model, "set_attn_implementation", None)
    old_attn = getattr(hf_model.config, "_attn_implementation", None)
    if set_attn is not None:
        try:
            set_attn("eager")
        except Exception:  # noqa: BLE001 - some models only have one implementation
            pass
    uses_tt = "token_type_ids" in inspect.signature(hf_model.forward).parameters

    class Pooled(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            kw = {"token_type_ids": torch.zeros_like(input_ids)} if uses_tt else {}
            h = self.m(input_ids=input_ids, attention_mask=attention_mask, **kw)[0]
            if mode == "cls":
                return h[:, 0]
            mask = attention_mask.unsqueeze(-1).to(h.dtype)
            return (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    ids = torch.ones(2, 16, dtype=torch.long)
    mask = torch.ones(2, 16, dtype=torch.long)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Pooled(hf_model), (ids, mask), str(out), input_names=["input_ids", "attention_mask"],
                output_names=["embedding"], opset_version=OPSET, dynamo=False,
                dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                              "embedding": {0: "batch"}},
            )
    except Exception as exc:  # noqa: BLE001
        raise SieveError(f"ONNX export of the model failed ({type(exc).__name__}: {str(exc)[:200]}); "
                         "use backend 'torch'") from exc
    finally:
        if set_attn is not None and old_attn:
            try:
                set_attn(old_attn)
            except Exception:  # noqa: BLE001
                pass
    return {"token_type_ids": uses_tt}


def _ort_optimize(src: Path, out: Path, config) -> Path | None:
    """ONNX Runtime's offline transformer fusions (Attention, SkipLayerNorm, BiasGelu);
    None if this architecture is not supported (the plain graph is used then)."""
    import logging

    heads = getattr(config, "num_attention_heads", 0)
    hidden = getattr(config, "hidden_size", 0)
    mtype = getattr(config, "model_type", "bert")
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        logging.getLogger("onnxruntime").setLevel(logging.ERROR)
        fused = optimize_model(str(src), model_type=mtype if mtype in ("bert", "roberta") else "bert",
                               num_heads=int(heads), hidden_size=int(hidden))
        fused.save_model_to_file(str(out))
        return out
    except Exception:  # noqa: BLE001 - an unsupported graph just stays unfused
        return None


def _quantize(src: Path, out: Path) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger("onnxruntime").setLevel(logging.ERROR)
    quantize_dynamic(
        str(src), str(out), weight_type=getattr(QuantType, QUANT_OPTIONS["weight_type"]),
        per_channel=QUANT_OPTIONS["per_channel"], reduce_range=QUANT_OPTIONS["reduce_range"],
        op_types_to_quantize=list(QUANT_OPTIONS["op_types"]),
        extra_options={"DefaultTensorType": 1},  # FLOAT, for outputs of fused (com.microsoft) ops
    )


# -- inference --------------------------------------------------------------------


def pad_batch(encodings) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, attention_mask) int64, padded to the batch's longest row."""
    lens = [len(e.ids) for e in encodings]
    width = max(lens) if lens else 0
    ids = np.zeros((len(encodings), width), dtype=np.int64)
    mask = np.zeros((len(encodings), width), dtype=np.int64)
    for j, e in enumerate(encodings):
        ids[j, : lens[j]] = e.ids
        mask[j, : lens[j]] = 1
    return ids, mask


class OnnxInt8Encoder:
    """The :class:`core.stages.embed.Encoder` of the "onnx-int8" backend."""

    backend = BACKEND

    def __init__(self, model: str = "all-MiniLM-L6-v2", normalize: bool = True, *,
                 progress: Progress | None = None, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise SieveError("backend 'onnx-int8' needs onnxruntime (pip install onnxruntime); "
                             "or use backend 'torch'") from exc
        from tokenizers import Tokenizer

        self.path = export_onnx(model, progress=progress)
        meta = json.loads((self.path / META_FILE).read_text())
        self.model_id = f"{meta['model_id']}#{BACKEND}"
        self.dim = int(meta["dim"])
        self.max_seq_length = int(meta["max_seq_length"])
        self.normalize = normalize
        self.device = "cpu"
        self.tokenizer = Tokenizer.from_file(str(self.path / TOKENIZER_FILE))
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads or usable_cores())
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.path / MODEL_FILE), so, providers=["CPUExecutionProvider"])

    def tokenize(self, texts: Sequence[str]):
        return pad_batch(self.tokenizer.encode_batch(list(texts)))

    def encode_tokenized(self, batch) -> np.ndarray:
        ids, mask = batch
        if len(ids) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0].astype(np.float32, copy=False)
        if self.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = out / np.maximum(norms, 1e-12)
        return np.ascontiguousarray(out, dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_tokenized(self.tokenize(texts))
