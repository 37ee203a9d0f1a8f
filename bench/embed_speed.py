"""Embed a list of texts with ONE method in this (fresh) process and print a JSON line.

    python -m bench.embed_speed METHOD TEXTS.json OUT.npy
    python -m bench.embed_speed --prepare BACKEND      # the one-time export/distillation only

METHOD is ``baseline`` (the plain way: ``SentenceTransformer(path).encode(texts)``, fp32,
default batch size, texts in file order, then L2-normalised for comparison) or a Sieve
backend (``torch``, ``onnx-int8``, ``static``, ``auto``): Sieve's own embed stage
(``core.stages.embed.run_embed``: length-sorted batches, the (model, text) cache written to a
fresh temporary workspace) with that backend.  ``load_s`` is loading the model (for
onnx-int8/static it includes the one-time export/distillation when it is not cached
yet); ``encode_s`` is embedding the texts; the vectors go to OUT.npy (row order = input).
"""

from __future__ import annotations

import inspect
import json
import resource
import sys
import tempfile
import time
from pathlib import Path


def _sieve_encoder(backend: str):
    """(encoder, EmbedParams, note) for a backend, whatever state core/stages/embed.py is in."""
    from dataclasses import fields

    from core.stages import embed as E

    names = {f.name for f in fields(E.EmbedParams)}
    if "backend" not in names:
        if backend not in ("torch", "auto"):
            raise SystemExit(f"core.stages.embed.EmbedParams has no 'backend' field yet: cannot run {backend!r}")
        params = E.EmbedParams(device="cpu")
        return E.load_encoder(params.model, params.device, params.normalize), params, "no backend field: torch path"
    params = E.EmbedParams(device="cpu", backend=backend)
    resolved = getattr(params, "resolved", None)
    if callable(resolved):
        try:
            params = resolved()
        except TypeError:
            pass
    sig = inspect.signature(E.load_encoder).parameters
    if "params" in sig:
        enc = E.load_encoder(params=params)
    elif "backend" in sig:
        enc = E.load_encoder(params.model, params.device, params.normalize, backend=params.backend)
    else:
        return None, params, "encoder built inside run_embed"  # load time then counts as encode time
    return enc, params, ""


def prepare(backend: str) -> None:
    """Build (or find cached) the backend's model: the one-time ONNX export or static
    distillation, so the measured runs time the steady state.  Prints a JSON line."""
    t = time.perf_counter()
    _sieve_encoder(backend)
    print(json.dumps({"prepare": backend, "seconds": round(time.perf_counter() - t, 2),
                      "cpu_s": round(time.process_time(), 2)}))


def main(argv: list[str]) -> None:
    if argv[0] == "--prepare":
        return prepare(argv[1])
    method, texts_path, out_path = argv[:3]
    texts = json.loads(Path(texts_path).read_text())
    import numpy as np

    t_cpu = time.process_time()
    note, resolved = "", method
    if method == "baseline":
        from core.encoders.models import default_model_path

        t = time.perf_counter()
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(default_model_path()), device="cpu")
        load_s = time.perf_counter() - t
        t, c = time.perf_counter(), time.process_time()
        vecs = np.asarray(model.encode(texts), dtype=np.float32)  # every default: batch 32, fp32, file order
        encode_s, encode_cpu = time.perf_counter() - t, time.process_time() - c
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from core.stages.embed import load_embeddings, run_embed
        from core.stages.ingest import IngestParams, ingest
        from core.stages.dataset import TextSpec
        from core.store.workspace import Workspace

        with tempfile.TemporaryDirectory(prefix="sieve-embed-") as tmp:
            data = Path(tmp) / "texts.parquet"
            pq.write_table(pa.table({"text": texts}), data)
            ws = Workspace(Path(tmp) / "ws")
            ingest(ws, IngestParams(str(data), TextSpec(column="text")))
            t = time.perf_counter()
            enc, params, note = _sieve_encoder(method)
            load_s = time.perf_counter() - t
            resolved = getattr(params, "backend", "torch")
            t, c = time.perf_counter(), time.process_time()
            res = run_embed(ws, params, encoder=enc) if enc is not None else run_embed(ws, params)
            encode_s, encode_cpu = time.perf_counter() - t, time.process_time() - c
            vecs = np.asarray(load_embeddings(ws, res.key)[1], dtype=np.float32)
            if len(vecs) != len(texts):
                raise SystemExit(f"{len(vecs)} vectors for {len(texts)} texts (empty texts must be filtered first)")
    np.save(out_path, vecs)
    print(json.dumps({
        "method": method, "resolved": resolved, "n": len(texts), "dim": int(vecs.shape[1]),
        "load_s": round(load_s, 2), "encode_s": round(encode_s, 2),
        "texts_per_s": round(len(texts) / max(encode_s, 1e-9), 1),
        "encode_cpu_s": round(encode_cpu, 2),  # less sensitive than wall time to other work on the machine
        "cpu_s": round(time.process_time() - t_cpu, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1), "note": note,
    }))


if __name__ == "__main__":
    main(sys.argv[1:])
