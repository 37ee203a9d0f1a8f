"""Texts over the model's token limit (issue 12 kind 4) and huge cells (issue 15 item 12),
with the real packaged model (all-MiniLM-L6-v2, 256 tokens) on a few generated texts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from pyarrow.parquet import write_table
from typer.testing import CliRunner

from core.encoders import long_text as lt
from core.stages.long_texts import count_dataset
from core.stages.embed import EmbedParams, embed_key, embed_prepared, encoder_limit, run_embed
from core.encoders.models import DEFAULT_MODEL
from core.encoders.registry import load_encoder
from core.stages.ingest import IngestParams, ingest
from core.stages.dataset import TextSpec, current_dataset
from core.store.workspace import SieveError, Workspace
from core.store.artifacts import stage_key
from tests.fakes import REPO_ROOT as ROOT

WORDS = ("we study graph neural networks for protein structure prediction and report strong results on "
         "several benchmark datasets with careful ablations of attention layers and contrastive losses").split()


def _long_pair(n_words: int = 330, seed: int = 0) -> tuple[str, str]:
    """Two texts identical in their first ~n_words words (> 256 tokens), different after."""
    rng = np.random.default_rng(seed)
    base = " ".join(rng.choice(WORDS, n_words))
    return (base + " In conclusion the method fails on small molecules and noisy labels.",
            base + " Finally we release code for quantum chemistry simulations of crystals.")


def _hf_token_count(text: str) -> int:
    """Tokens with special tokens, by transformers' own tokenizer of the packaged model."""
    from transformers import AutoTokenizer

    from core.encoders.models import default_model_path

    tok = AutoTokenizer.from_pretrained(str(default_model_path()))
    return len(tok(text, truncation=False)["input_ids"])


@pytest.fixture(scope="module")
def limit():
    lim = lt.model_limit(DEFAULT_MODEL)
    assert lim is not None and lim.max_seq_length == 256 and lim.n_special == 2
    return lim


def test_pair_really_differs_only_after_the_limit(limit):
    a, b = _long_pair()
    ta = limit.tokenizer.encode(a, add_special_tokens=False).ids
    tb = limit.tokenizer.encode(b, add_special_tokens=False).ids
    first_diff = next(i for i, (x, y) in enumerate(zip(ta, tb)) if x != y)
    assert first_diff > limit.content


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


def test_chunk_without_a_tokenizer_is_refused_by_name():
    with pytest.raises(SieveError, match="long_text='chunk'"):
        lt.prepare(["x " * 1000], "chunk", None)
    assert lt.prepare(["x " * 1000], "truncate", None).inputs == ["x " * 1000]


def test_windows_overlap_cover_the_text_and_fit_the_limit(limit):
    a, _ = _long_pair(n_words=900)
    parts, counts = lt.windows(a, limit)
    assert len(parts) >= 3
    assert all(c <= limit.content for c in counts)
    assert parts[0] == a[: len(parts[0])] and a.endswith(parts[-1])
    for p in parts:  # each window re-tokenises within the model's limit
        assert _hf_token_count(p) <= limit.max_seq_length + 2
    total = len(limit.tokenizer.encode(a, add_special_tokens=False).ids)
    assert sum(counts) >= total  # overlapping windows cover every token


def test_count_of_over_limit_texts_matches_the_tokenizer(limit):
    texts = [" ".join(["data"] * k) for k in (10, 254, 255, 256, 600)] + ["short", "é" * 300]
    want = sum(1 for t in texts if _hf_token_count(t) > 256)
    got = lt.count_long(texts, limit)
    assert got.n_over_limit == want == 3  # 255 and 256 and 600 words ("data" is one token)
    assert got.max_seq_length == 256 and got.n_over_cap == 0


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


def test_cli_reports_long_texts_and_reproduces_chunk(tmp_path):
    from core.cli import app

    a, b = _long_pair()
    rows = [a, b] + [f"short prompt number {i} about {w}" for i, w in enumerate(WORDS[:18])]
    data = tmp_path / "in.csv"
    pacsv.write_csv(pa.table({"text": rows}), data)
    runner = CliRunner()
    res = runner.invoke(app, ["ingest", str(data), "--text", "text", "-w", str(tmp_path / "ws")])
    assert res.exit_code == 0, res.output
    assert "2 of 20 texts exceed the model's limit of 256 tokens" in res.output.replace("\n", " ")
    res = runner.invoke(app, ["run", str(data), "--text", "text", "--budget", "3", "--out", str(tmp_path / "o.csv"),
                              "--long-text", "chunk", "--backend", "torch", "-w", str(tmp_path / "ws")])
    assert res.exit_code == 0, res.output
    man = json.loads((tmp_path / "o.csv.manifest.json").read_text())
    assert man["model"]["params"]["long_text"] == "chunk"
    assert man["model"]["long_texts"]["n_over_limit"] == 2
    res = runner.invoke(app, ["reproduce", str(tmp_path / "o.csv.manifest.json"), "--out", str(tmp_path / "r.csv"),
                              "-w", str(tmp_path / "ws2")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "r.csv.manifest.json").read_text())["selected_row_ids"] == man["selected_row_ids"]
    res = runner.invoke(app, ["embed", "--long-text", "chunks", "-w", str(tmp_path / "ws")])
    assert res.exit_code == 2 and "long_text" in res.output


# -- huge cells: bounded memory, a documented cap ---------------------------------------------


def test_huge_cell_is_clipped_before_tokenising_and_capped(limit, monkeypatch):
    rng = np.random.default_rng(1)
    cell = " ".join(rng.choice(WORDS, 700_000))  # ~5.5 MB
    prep = lt.prepare([cell], "truncate", limit)
    assert len(prep.inputs[0]) < 20 * limit.content * lt.CLIP_CHARS_PER_TOKEN
    assert lt.count_long([cell], limit).n_over_cap == 1
    monkeypatch.setenv("SIEVE_MAX_TEXT_CHARS", "20000")
    prep = lt.prepare([cell], "chunk", limit)
    assert 1 < len(prep.inputs) <= 20000 // 4 // (limit.content - limit.content // lt.OVERLAP_FRACTION) + 2
    assert sum(len(p) for p in prep.inputs) < 2 * 20000
    monkeypatch.setenv("SIEVE_MAX_TEXT_CHARS", "12")
    with pytest.raises(SieveError, match="SIEVE_MAX_TEXT_CHARS"):
        lt.prepare([cell], "chunk", limit)


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


# -- the app: Data and Map pages say how many texts are over the limit ------------------------


def test_data_and_map_pages_count_texts_over_the_limit(tmp_path, monkeypatch):
    from core.stages.embed import EmbedParams as EP
    from core.engines.local import MapParams, build_map
    from core.stages.project import ProjectParams
    from pages import state as S
    from tests.fakes import BagOfWordsEncoder
    from tests.app_fixtures import no_errors, open_page

    a, b = _long_pair()
    rows = [a, b] + [f"short prompt number {i} about {w}" for i, w in enumerate(WORDS[:20])]
    ws = Workspace(tmp_path / "ws")
    _ingest(ws, rows, tmp_path / "d.parquet")
    build_map(ws, MapParams(EP(long_text="chunk"), ProjectParams(n_neighbors=5, seed=1)), encoder=BagOfWordsEncoder())
    monkeypatch.setenv("SIEVE_WORKSPACE", str(ws.root))
    at = open_page(S.PAGE_DATA, 120)
    no_errors(at)
    metric = [m for m in at.metric if "token limit" in m.label]
    assert len(metric) == 1 and metric[0].value == "2" and "256" in metric[0].label
    at = open_page(S.PAGE_MAP, 120)
    no_errors(at)
    assert at.selectbox(key=S.W_MAP_PREFIX + "long_text").value == "chunk"
    assert any("2 of 22 texts exceed the model's limit of 256 tokens" in i.value and "windows" in i.value
               for i in at.info), [i.value for i in at.info]
