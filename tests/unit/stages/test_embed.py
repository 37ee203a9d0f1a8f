"""Embed: length-sorted batches, the (model, text hash) cache, resumability, the real model, and
texts over the model's token limit (long_text truncate/chunk, a 20 MB cell in bounded memory), and the
backend in EmbedParams (validated, old dicts mean torch, part of the key, one artifact per backend)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.encoders import long_text as lt
from core.encoders import models as M
from core.stages.embed import (Cancelled, EmbedParams, embed_key, embed_prepared, embed_texts, encoder_limit,
                               load_embeddings, precomputed_vectors, run_embed)
from core.stages.embed_cache import CACHE_TABLE, length_order
from core.stages.long_texts import count_dataset
from core.encoders.models import DEFAULT_MODEL, DEFAULT_MODEL_ID
from core.encoders.registry import load_encoder
from core.stages.ingest import IngestParams, ingest
from core.stages.dataset import TextSpec, current_dataset
from core.store.workspace import SieveError, Workspace
from core.store.artifacts import stage_key
from tests.builders import long_pair as _long_pair
from tests.fakes import REPO_ROOT as ROOT
from tests.fakes import HashEncoder, WrongDimEncoder, write_table


def _ingest_texts(ws: Workspace, texts, path: Path) -> None:
    write_table(pa.table({"k": list(range(len(texts))), "text": list(texts)}), path)
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))


def _texts(n: int, prefix: str = "text") -> list[str]:
    # varied lengths so that length-sorting matters
    return [f"{prefix} {i} " + "word " * (i * 7 % 13) for i in range(n)]


# -- pure: length_order and embed_texts -------------------------------------------------


@given(st.lists(st.text(max_size=30), max_size=60))
@settings(max_examples=150, deadline=None)
def test_length_order_is_longest_first_ties_by_position(texts):
    order = length_order(texts)
    assert sorted(order.tolist()) == list(range(len(texts)))
    keys = [(-len(texts[i]), i) for i in order]
    assert keys == sorted(keys)


def test_length_order_example():
    assert length_order(["aa", "b", "cccc", "dd", ""]).tolist() == [2, 0, 3, 1, 4]


@given(st.lists(st.text(alphabet="abc xyz", max_size=25), min_size=0, max_size=50),
       st.integers(min_value=1, max_value=9))
@settings(max_examples=100, deadline=None)
def test_embed_texts_sorted_batches_and_input_order(texts, batch_size):
    enc = HashEncoder(dim=8)
    progress = []
    out = embed_texts(texts, enc, batch_size, progress=lambda d, t, m: progress.append((d, t)))
    assert out.shape == (len(texts), 8) and out.dtype == np.float32
    # rows come back in input order: each row equals the text's own (per-text deterministic) vector
    for i, t in enumerate(texts):
        np.testing.assert_array_equal(out[i], HashEncoder(dim=8).embed([t])[0])
    # batches: at most batch_size, every text exactly once, lengths never increase across the run
    assert all(1 <= len(b) <= batch_size for b in enc.calls)
    assert sorted(enc.texts_seen) == sorted(texts)
    lengths = [len(t) for t in enc.texts_seen]
    assert lengths == sorted(lengths, reverse=True)
    # progress: monotonic, ends at the total
    dones = [d for d, _ in progress]
    assert dones == sorted(dones) and all(t == len(texts) for _, t in progress)
    if texts:
        assert dones[-1] == len(texts)


def test_embed_texts_cancel_and_bad_encoder():
    with pytest.raises(Cancelled):
        embed_texts(["a", "b"], HashEncoder(), 1, cancel=lambda: True)

    with pytest.raises(SieveError, match="shape"):
        embed_texts(["a", "b"], WrongDimEncoder(), 2)


# -- run_embed: the cache ------------------------------------------------------------------


def test_second_run_is_cached_and_computes_nothing(tmp_path):
    ws = Workspace(tmp_path / "ws")
    texts = _texts(30)
    _ingest_texts(ws, texts, tmp_path / "d.parquet")
    enc = HashEncoder()
    first = run_embed(ws, EmbedParams(batch_size=8), encoder=enc)
    assert (first.cached, first.n_computed, first.n_rows, first.dim) == (False, 30, 30, 16)
    assert first.model_id == enc.model_id
    enc2 = HashEncoder()
    second = run_embed(ws, EmbedParams(batch_size=8), encoder=enc2)
    assert second.cached is True and second.n_computed == 0 and second.key == first.key
    assert enc2.calls == []
    row_ids, vectors = load_embeddings(ws, first.key)
    assert row_ids.tolist() == list(range(30))
    np.testing.assert_array_equal(vectors, enc.embed(texts))


def test_superset_computes_only_new_texts(tmp_path):
    ws = Workspace(tmp_path / "ws")
    old = _texts(40)
    _ingest_texts(ws, old, tmp_path / "a.parquet")
    enc = HashEncoder()
    run_embed(ws, EmbedParams(batch_size=8, chunk_size=16), encoder=enc)

    new = _texts(15, prefix="fresh")
    superset = old[:25] + new[:5] + old[25:] + new[5:] + old[:3]  # new rows in the middle, old repeated
    _ingest_texts(ws, superset, tmp_path / "b.parquet")
    enc2 = HashEncoder()
    res = run_embed(ws, EmbedParams(batch_size=8, chunk_size=16), encoder=enc2)
    assert res.cached is False
    assert res.n_computed == len(set(new)) == 15
    assert sorted(enc2.texts_seen) == sorted(new)
    _, vectors = load_embeddings(ws, res.key)
    np.testing.assert_array_equal(vectors, HashEncoder().embed(superset))


def test_duplicate_texts_are_embedded_once(tmp_path):
    ws = Workspace(tmp_path / "ws")
    texts = ["same", "other", "same", "third", "other", "same"]
    _ingest_texts(ws, texts, tmp_path / "d.csv")
    enc = HashEncoder()
    res = run_embed(ws, EmbedParams(), encoder=enc)
    assert res.n_computed == 3 and sorted(enc.texts_seen) == ["other", "same", "third"]
    _, v = load_embeddings(ws, res.key)
    assert v.shape == (6, 16)
    np.testing.assert_array_equal(v[0], v[2])
    np.testing.assert_array_equal(v[0], v[5])
    np.testing.assert_array_equal(v[1], v[4])
    assert not np.array_equal(v[0], v[1])


def test_cache_is_per_model(tmp_path):
    ws = Workspace(tmp_path / "ws")
    _ingest_texts(ws, _texts(10), tmp_path / "d.parquet")
    a = run_embed(ws, EmbedParams(model="model-a"), encoder=HashEncoder(model_id="model-a"))
    enc_b = HashEncoder(model_id="model-b", seed=1)
    b = run_embed(ws, EmbedParams(model="model-b"), encoder=enc_b)
    assert a.key != b.key and b.n_computed == 10 and len(enc_b.texts_seen) == 10


def test_progress_is_monotonic_and_ends_at_total(tmp_path):
    ws = Workspace(tmp_path / "ws")
    texts = _texts(37)
    _ingest_texts(ws, texts, tmp_path / "d.parquet")
    seen = []
    run_embed(ws, EmbedParams(batch_size=4, chunk_size=10), encoder=HashEncoder(),
              progress=lambda d, t, m: seen.append((d, t)))
    dones = [d for d, _ in seen]
    assert dones == sorted(dones)
    assert {t for _, t in seen} == {37}
    assert dones[-1] == 37
    assert len(seen) >= 37 // 4  # called per batch, not just at the end


@pytest.mark.parametrize("how", ["cancel", "crash"])
def test_interrupted_run_resumes_only_missing_chunks(how, tmp_path):
    texts = _texts(50)
    params = EmbedParams(batch_size=5, chunk_size=10)  # 2 batches per chunk, 5 chunks

    # the reference: one uninterrupted run in its own workspace
    ref_ws = Workspace(tmp_path / "ref")
    _ingest_texts(ref_ws, texts, tmp_path / "d.parquet")
    ref = run_embed(ref_ws, params, encoder=HashEncoder())
    _, ref_vectors = load_embeddings(ref_ws, ref.key)

    ws = Workspace(tmp_path / "ws")
    _ingest_texts(ws, texts, tmp_path / "d.parquet")
    if how == "cancel":
        enc = HashEncoder()
        # stop after 5 batches: 2 whole chunks are done, the 3rd is half-way
        with pytest.raises(Cancelled):
            run_embed(ws, params, encoder=enc, cancel=lambda: len(enc.calls) >= 5)
    else:
        enc = HashEncoder(fail_after_calls=5)
        with pytest.raises(RuntimeError, match="simulated"):
            run_embed(ws, params, encoder=enc)
    assert len(enc.calls) == 5
    assert not ws.has_artifact("embed", ref.key)  # no half-finished result

    enc2 = HashEncoder()
    res = run_embed(ws, params, encoder=enc2)
    assert res.cached is False
    assert res.n_computed == 50 - 2 * 10  # the two finished chunks are not recomputed
    done_before = set(t for call in enc.calls[:4] for t in call)
    assert not done_before & set(enc2.texts_seen)
    assert sorted(enc2.texts_seen) == sorted(set(texts) - done_before)
    _, vectors = load_embeddings(ws, res.key)
    assert res.key == ref.key
    np.testing.assert_array_equal(np.asarray(vectors), np.asarray(ref_vectors))


def test_missing_chunk_file_is_recomputed(tmp_path):
    ws = Workspace(tmp_path / "ws")
    texts = _texts(20)
    _ingest_texts(ws, texts, tmp_path / "a.parquet")
    run_embed(ws, EmbedParams(chunk_size=10), encoder=HashEncoder())
    chunks = sorted((ws.root / "cache" / "embed").rglob("*.npy"))
    assert len(chunks) == 2
    chunks[0].unlink()
    # a new dataset with the same texts needs a new artifact, and must not trust the lost chunk
    _ingest_texts(ws, texts + ["one more"], tmp_path / "b.parquet")
    enc = HashEncoder()
    res = run_embed(ws, EmbedParams(chunk_size=10), encoder=enc)
    assert res.n_computed == 11
    _, v = load_embeddings(ws, res.key)
    np.testing.assert_array_equal(v, HashEncoder().embed(texts + ["one more"]))


# -- parameter validation ---------------------------------------------------------------

EMBED_BAD = {
    "model": ["", "   ", 3],
    "backend": ["onnx", "", None],
    "batch_size": [0, -4, 2.5, "64"],
    "device": ["gpu", "", None],
    "normalize": ["no", None],  # a truthy string must not silently mean True
    "chunk_size": [0, -1, 10.0],
    "long_text": ["chunks", "", None],
}


def test_embed_bad_cases_cover_every_field():
    assert set(EMBED_BAD) == {f.name for f in dataclasses.fields(EmbedParams)}


@pytest.mark.parametrize("field,value", [(f, v) for f, vs in EMBED_BAD.items() for v in vs])
def test_embed_params_bad_value_names_the_field(field, value):
    with pytest.raises(ValueError) as exc:
        EmbedParams(**{field: value})
    assert field in str(exc.value)


# -- the real packaged model -----------------------------------------------------------------


def test_real_model_embeddings(sieve_real_map, sieve_real_encoder):
    """~600 generated texts through run_embed with the real model (session map)."""
    m = sieve_real_map
    assert m.keys.model_id == DEFAULT_MODEL_ID
    row_ids, vectors = load_embeddings(m.ws, m.keys.embed)
    vectors = np.asarray(vectors)
    assert vectors.shape == (m.table.num_rows, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    # same-topic texts are closer than different-topic texts, on average and for most rows
    topics = m.topics()
    sims = vectors @ vectors.T
    same = topics[:, None] == topics[None, :]
    np.fill_diagonal(same, False)
    other = topics[:, None] != topics[None, :]
    mean_same = (sims * same).sum(1) / same.sum(1)
    mean_other = (sims * other).sum(1) / other.sum(1)
    assert (mean_same > mean_other).mean() > 0.95
    assert mean_same.mean() > mean_other.mean() + 0.15  # measured: 0.29 vs 0.03


def test_real_model_semantic_similarity(sieve_real_encoder):
    enc = sieve_real_encoder
    assert enc.dim == 384 and enc.model_id == DEFAULT_MODEL_ID
    texts = [
        "How do I bake a loaf of sourdough bread at home?",
        "Give me a simple recipe for homemade whole wheat bread.",
        "Write a SQL query that returns duplicate email addresses from the users table.",
        "How do I find repeated rows in a PostgreSQL table?",
        "What is the best way to train for my first marathon?",
    ]
    v = embed_texts(texts, enc, batch_size=2)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    s = v @ v.T
    assert s[0, 1] > s[0, 2] and s[0, 1] > s[0, 3] and s[0, 1] > s[0, 4]
    assert s[2, 3] > s[2, 0] and s[2, 3] > s[2, 1] and s[2, 3] > s[2, 4]
    # batching does not change the vectors
    np.testing.assert_allclose(embed_texts(texts, enc, batch_size=5), v, atol=1e-5)


@pytest.mark.parametrize("backend", ["torch", "onnx-int8"])
def test_truncate_gives_equal_vectors_and_chunk_tells_them_apart(backend, sieve_real_encoder, limit):
    enc = sieve_real_encoder if backend == "torch" else load_encoder(backend=backend)
    lim_info = encoder_limit(enc, DEFAULT_MODEL)
    a, b = _long_pair(n_words=700)  # ~4,300 characters: clipped before tokenising in truncate mode
    assert len(lt.prepare([a], "truncate", limit).inputs[0]) < len(a)
    short = ["a short prompt about bread", "how do I sort a list in python?"]
    trunc = embed_prepared([a, b, *short], enc, EmbedParams(long_text="truncate"), lim_info)
    chunk = embed_prepared([a, b, *short], enc, EmbedParams(long_text="chunk"), lim_info)
    assert float(trunc[0] @ trunc[1]) > 0.99999  # the tail is never seen
    assert float(chunk[0] @ chunk[1]) < 0.995  # the tail changes the vector
    np.testing.assert_allclose(np.linalg.norm(chunk, axis=1), 1.0, atol=1e-5)  # re-normalised
    # Texts within the limit are one window: the same vector as truncate, and the clip changes
    # nothing.  onnx-int8 quantizes activations per batch, so its vectors depend on the batch
    # they are in (cosine ~0.99); torch fp32 agrees to float rounding.
    def agree(x, y):
        cos = np.sum(x * y, axis=1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
        assert cos.min() > (0.99999 if backend == "torch" else 0.98), cos

    agree(chunk[2:], trunc[2:])
    agree(trunc[:2], enc.embed([a, b]))


def test_static_backend_reads_every_token_in_both_modes():
    enc = load_encoder(backend="static")
    lim_info = encoder_limit(enc, DEFAULT_MODEL)
    assert lim_info[1] is False  # no token limit
    a, b = _long_pair()
    for mode in ("truncate", "chunk"):
        v = embed_prepared([a, b], enc, EmbedParams(long_text=mode, backend="static"), lim_info)
        assert float(v[0] @ v[1]) < 0.99999


def _ingest(ws: Workspace, texts, path: Path) -> None:
    write_table(pa.table({"k": list(range(len(texts))), "text": list(texts)}), path)
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))


def test_run_embed_records_the_count_and_keys_by_mode(tmp_path, sieve_real_encoder):
    ws = Workspace(tmp_path / "ws")
    a, b = _long_pair()
    _ingest(ws, [a, b, "short one", "short two"], tmp_path / "d.parquet")
    info = current_dataset(ws)
    truncate = run_embed(ws, EmbedParams(backend="torch"), encoder=sieve_real_encoder)
    chunk = run_embed(ws, EmbedParams(backend="torch", long_text="chunk"), encoder=sieve_real_encoder)
    assert truncate.key != chunk.key
    # truncate keeps the key of workspaces and manifests from before the option existed
    assert truncate.key == stage_key("embed", {"model": truncate.model_id, "normalize": True}, info.key)
    assert truncate.long_texts["n_over_limit"] == chunk.long_texts["n_over_limit"] == 2
    assert "2 of 4 texts exceed the model's limit of 256 tokens" in chunk.long_text_message("chunk")
    ws2 = Workspace(tmp_path / "ws")
    assert run_embed(ws2, EmbedParams(backend="torch", long_text="chunk"), encoder=sieve_real_encoder).cached
    assert count_dataset(ws, DEFAULT_MODEL).n_over_limit == 2


def test_old_params_without_long_text_mean_truncate():
    old = {"model": "all-MiniLM-L6-v2", "batch_size": 64, "device": "auto", "normalize": True, "chunk_size": 2048}
    p = EmbedParams.from_dict(old)
    assert p.long_text == "truncate" and p.backend == "torch"


def test_embedding_a_20mb_cell_keeps_memory_bounded(tmp_path):
    """In a fresh process: the peak RSS (VmHWM) grows by less than 200 MB while a 20 MB cell
    is embedded (tokenising it whole took gigabytes), and its vector is that of its first words."""
    script = textwrap.dedent("""
        import json
        from core.stages.embed import EmbedParams, embed_prepared, encoder_limit, load_encoder

        def hwm_mb():  # this process's own peak RSS
            with open("/proc/self/status") as fh:
                return next(int(x.split()[1]) for x in fh if x.startswith("VmHWM")) / 1024

        enc = load_encoder(backend="onnx-int8")
        lim = encoder_limit(enc, "all-MiniLM-L6-v2")
        small = embed_prepared(["warm up"], enc, EmbedParams(), lim)
        cell = "we study graph neural networks for protein structure prediction " * 330_000
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset the peak to the current RSS
        before = hwm_mb()
        v = embed_prepared([cell], enc, EmbedParams(), lim)
        after = hwm_mb()
        head = embed_prepared([cell[:5000]], enc, EmbedParams(), lim)
        print(json.dumps({"mb": len(cell) / 1e6, "grew_mb": after - before, "cos": float(v[0] @ head[0])}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["mb"] > 20
    assert res["grew_mb"] < 200, res
    assert res["cos"] > 0.9999, res


def test_backend_params_are_validated():
    with pytest.raises(SieveError, match="backend"):
        EmbedParams(backend="onnx")
    with pytest.raises(SieveError, match="backend"):
        EmbedParams(backend="static", device="cuda")
    assert EmbedParams().backend == "auto"


def test_a_params_dict_without_backend_means_torch():
    old = {k: v for k, v in dataclasses.asdict(EmbedParams()).items() if k != "backend"}
    assert EmbedParams.from_dict(old).backend == "torch"
    assert EmbedParams.from_dict({**old, "backend": "static"}).backend == "static"
    # the manifest/map-record reader must go through it (old manifests reproduce with torch)
    from core.engines.local import MapParams

    mp = MapParams().to_dict()
    mp["embed"] = old
    assert MapParams.from_dict(mp).embed.backend == "torch"


def test_backend_is_part_of_the_key_and_torch_keeps_its_old_key(tmp_path):
    from core.stages.ingest import IngestParams, ingest
    from core.stages.dataset import TextSpec, current_dataset

    path = tmp_path / "d.csv"
    path.write_text("text\nhello there\nhow do I cook rice\n")
    ws = Workspace(tmp_path / "ws")
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    keys = {b: embed_key(ws, EmbedParams(backend=b, device="cpu")) for b in ("torch", "onnx-int8", "static")}
    assert len({k for k, _ in keys.values()}) == 3
    assert keys["torch"][1] == M.DEFAULT_MODEL_ID  # the model id of today's caches and manifests
    old_key = stage_key("embed", {"model": M.DEFAULT_MODEL_ID, "normalize": True}, current_dataset(ws).key)
    assert keys["torch"][0] == old_key
    assert keys["onnx-int8"][1] == M.DEFAULT_MODEL_ID + "#onnx-int8"
    assert embed_key(ws, EmbedParams(device="cpu"))[0] == keys["onnx-int8"][0]  # auto -> onnx-int8 here


def test_two_backends_two_artifacts_no_mixing(tmp_path, onnx_encoder, static_encoder, sieve_real_encoder):
    from core.stages.ingest import IngestParams, ingest
    from core.stages.dataset import TextSpec
    from core.stages.embed import load_embeddings

    texts = ["how do I fix a flat tyre", "write a haiku about autumn", "sort a list in python", "explain tides"]
    path = tmp_path / "d.parquet"
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": texts}), path)
    ws = Workspace(tmp_path / "ws")
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    res = {b: run_embed(ws, EmbedParams(backend=b, device="cpu"), encoder=enc)
           for b, enc in (("torch", sieve_real_encoder), ("onnx-int8", onnx_encoder), ("static", static_encoder))}
    assert len({r.key for r in res.values()}) == 3
    assert all(not r.cached and r.n_computed == 4 for r in res.values())
    vecs = {b: load_embeddings(ws, r.key)[1] for b, r in res.items()}
    assert vecs["static"].shape[1] == static_encoder.dim
    assert not np.allclose(vecs["torch"], vecs["onnx-int8"])  # int8 vectors are close, never identical
    for b, r in res.items():
        assert ws.load_artifact("embed", r.key)[1]["params"]["backend"] == b  # the resolved backend is recorded
    # run again with "auto": the onnx-int8 artifact is reused, nothing is recomputed
    again = run_embed(ws, EmbedParams(device="cpu"), encoder=onnx_encoder)
    assert again.cached and again.key == res["onnx-int8"].key
    # the text cache keeps one entry per (backend, text)
    with ws.connect() as con:
        n = con.execute(f"SELECT count(DISTINCT model_key), count(*) FROM {CACHE_TABLE}").fetchall()[0]
    assert n == (3, 12)


def _vec_file(tmp_path, vectors):
    path = tmp_path / "v.jsonl"
    path.write_text("".join(json.dumps({"text": f"t{i}", "vec": v}) + "\n" for i, v in enumerate(vectors)))
    return path


def test_overflowing_and_underflowing_norms_normalise_to_unit_vectors(tmp_path):
    from core.stages.embed import EmbedParams, load_embeddings, run_embed

    vectors = [[3e19, 3e19, 0.0], [1e-30, 1e-30, 0.0], [3e38, -3e38, 1.0], [1e-44, 0.0, 0.0], [1.0, 2.0, 2.0]]
    path = _vec_file(tmp_path, vectors)
    ws = Workspace(tmp_path / "ws")
    ingest(ws, IngestParams(str(path), TextSpec(column="text"), "vec"))
    res = run_embed(ws, EmbedParams())
    _, got = load_embeddings(ws, res.key)
    assert got.dtype == np.float32 and np.isfinite(got).all()
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-6)
    want = np.asarray(vectors, np.float64)
    want = want / np.abs(want).max(axis=1, keepdims=True)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_without_normalising_a_row_that_underflows_float32_is_refused():
    col = pa.array([[1.0, 2.0], [1e-60, 1e-60]], pa.list_(pa.float64()))
    with pytest.raises(SieveError, match=r"'vec' has a vector whose values all underflow float32 .* at row 8"):
        precomputed_vectors(np.array([7, 8]), col, "vec", normalize=False)
    ok = precomputed_vectors(np.array([7, 8]), pa.array([[1.0, 2.0], [3.0, 4.0]], pa.list_(pa.float64())), "vec",
                             normalize=False)
    assert ok.tolist() == [[1.0, 2.0], [3.0, 4.0]]
