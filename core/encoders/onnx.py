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

import inspect
import json
import logging
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
from tokenizers import Tokenizer

from core.encoders.base import Progress
from core.encoders.cache import (META_FILE, artifact_dir, build_atomically, export_versions, fast_tokenizer_json,
                                 load_sentence_transformer, st_parts, verify_dir)
from core.encoders.models import local_model_dir, model_id
from core.runtime.hardware import usable_cores
from core.store.workspace import SieveError

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
# cosine there; cluster ARI vs the fp32 pipeline on sample_data/prompts.csv (tests/unit/encoders/test_static.py).
ONNX_QUALITY = {
    "speedup_short": 2.24,
    "speedup_long": 2.17,
    "median_cosine": 0.9935,
    "ari_vs_fp32": 0.94,
    "measured_on": "a quiet 2-core CPU (bench/RESULTS.md); ARI on sample_data/prompts.csv",
}
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"


# -- the cache dir ----------------------------------------------------------------


# -- export -----------------------------------------------------------------------


def _export_target(model: str) -> tuple[Path, Path, dict]:
    """(local model folder, cache folder of its export, export options)."""
    mdir = local_model_dir(model)
    options = {"export_version": EXPORT_VERSION, "opset": OPSET, "quant": QUANT_OPTIONS, "versions": export_versions()}
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
        st = load_sentence_transformer(mdir)
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
        return {"model_id": model_id(model), "pooling": mode, "max_seq_length": max_len, "options": options,
                "dim": int((getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension)()), "fused": fused is not None,
                "token_type_ids": info["token_type_ids"]}

    build_atomically(final, [MODEL_FILE, TOKENIZER_FILE], build)
    return final


def _torch_export(hf_model, mode: str, out: Path) -> dict:
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
    """The :class:`core.encoders.base.Encoder` of the "onnx-int8" backend."""

    backend = BACKEND

    def __init__(self, model: str = "all-MiniLM-L6-v2", normalize: bool = True, *,
                 progress: Progress | None = None, threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise SieveError("backend 'onnx-int8' needs onnxruntime (pip install onnxruntime); "
                             "or use backend 'torch'") from exc
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

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_tokenized(self.tokenize(texts))
