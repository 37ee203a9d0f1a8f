"""Crash safety: SIGKILL in the middle of embedding or export loses nothing and
corrupts nothing.

- Embedding is killed at random moments (10 trials); the workspace then opens
  cleanly, the cache index has no duplicate and no dangling entry, and resuming gives
  vectors identical to an uninterrupted run.
- Export is killed at random moments; the final file name either does not exist or
  holds the complete, readable file (never a partial one).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pyarrow as pa
import pytest

from core.stages.embed import EmbedParams, load_embeddings, run_embed
from core.stages.ingest import IngestParams, ingest
from core.stages.dataset import TextSpec
from core.store.workspace import Workspace
from tests.fakes import REPO_ROOT, HashEncoder, write_table

N_TEXTS = 400
TRIALS = 10
PARAMS = EmbedParams(batch_size=8, chunk_size=24)

CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    from core.stages.embed import EmbedParams, run_embed
    from core.store.workspace import Workspace
    from tests.fakes import SlowEncoder

    ws = Workspace(sys.argv[1])
    print("started", flush=True)
    run_embed(ws, EmbedParams(batch_size=8, chunk_size=24), encoder=SlowEncoder(dim=16, delay=0.02),
              progress=lambda done, total, msg: print(f"progress {{done}} {{total}}", flush=True))
    print("finished", flush=True)
    """
)


def _table() -> pa.Table:
    words = ["bread", "python", "brakes", "garden", "chords", "lease", "budget", "vet"]
    # varied lengths so length-sorting matters; some duplicates so dedup matters
    texts = [" ".join(words[(i * 7 + j) % 8] for j in range(3 + i % 17)) + f" #{i % 350}" for i in range(N_TEXTS)]
    return pa.table({"id": list(range(N_TEXTS)), "text": texts})


@pytest.fixture(scope="module")
def base_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    path = write_table(_table(), root / "texts.parquet")
    ws = Workspace(root / "base")
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    ref = Workspace(root / "reference")
    shutil.copytree(ws.root, ref.root)
    res = run_embed(ref, PARAMS, encoder=HashEncoder(dim=16))
    ids, vectors = load_embeddings(ref, res.key)
    return ws, np.asarray(ids), np.asarray(vectors)


def _check_cache_consistent(ws: Workspace) -> int:
    """The workspace opens; the index has unique keys and every entry's chunk file loads."""
    with ws.connect() as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "embed_cache" not in tables:
            return 0
        rows = con.execute("SELECT model_key, text_hash, chunk, pos FROM embed_cache").fetchall()
    keys = [(m, h) for m, h, _, _ in rows]
    assert len(keys) == len(set(keys)), "duplicate cache entries"
    for model_key, _, chunk, pos in rows:
        arr = np.load(ws.root / "cache" / "embed" / model_key / f"{chunk}.npy", mmap_mode="r")
        assert 0 <= pos < len(arr) and np.isfinite(arr[pos]).all()
    return len(rows)


def test_sigkill_during_embedding_then_resume(base_ws, tmp_path):
    ws0, ref_ids, ref_vectors = base_ws
    rng = np.random.default_rng(2024)
    done_before_resume = []
    for trial in range(TRIALS):
        ws = Workspace(tmp_path / f"trial{trial}")
        shutil.copytree(ws0.root, ws.root)
        child = subprocess.Popen([sys.executable, "-c", CHILD.format(root=str(REPO_ROOT)), str(ws.root)],
                                 cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "started"
        # Kill after a random number of progress events (so the moment is random within the
        # run however loaded the machine is), plus a random few milliseconds.
        events = int(rng.integers(0, 50))
        for _ in range(events):
            if not child.stdout.readline():
                break
        time.sleep(float(rng.uniform(0.0, 0.03)))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        # no temp files survive as artifacts; the workspace opens and its index is consistent
        n_cached = _check_cache_consistent(ws)
        done_before_resume.append(n_cached)
        assert not (ws.root / "artifacts" / "embed").exists() or all(
            (d / "meta.json").is_file() for d in (ws.root / "artifacts" / "embed").iterdir() if not d.name.startswith(".")
        )
        enc = HashEncoder(dim=16)
        res = run_embed(ws, PARAMS, encoder=enc)
        unique = len(set(_table().column("text").to_pylist()))
        if not res.cached:  # the kill came before the final artifact was written
            assert res.n_computed == unique - n_cached  # only what was missing was computed
            assert len(enc.texts_seen) == len(set(enc.texts_seen))
        ids, vectors = load_embeddings(ws, res.key)
        assert np.array_equal(np.asarray(ids), ref_ids)
        assert np.array_equal(np.asarray(vectors), ref_vectors)  # identical, not just close
        assert _check_cache_consistent(ws) == unique
    # the random moments really did land mid-run in most trials
    assert sum(0 < n < len(set(_table().column("text").to_pylist())) for n in done_before_resume) >= TRIALS // 2, \
        done_before_resume


EXPORT_CHILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    import numpy as np
    from core.stages.export import export_rows
    from core.selection import Selection
    from core.store.workspace import Workspace

    ws = Workspace(sys.argv[1])
    n = int(sys.argv[3])
    ids = np.arange(n, dtype=np.int64)
    sel = Selection(ids, ids, np.zeros(n, np.int32), np.arange(1, n + 1, dtype=np.int32), ["random"] * n, {{0: n}})
    print("started", flush=True)
    export_rows(ws, sel, {{0: "all"}}, sys.argv[2])
    print("finished", flush=True)
    """
)


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
def test_sigkill_during_export_never_leaves_a_partial_file(fmt, tmp_path):
    n = 150_000
    table = pa.table({"id": list(range(n)), "text": [f"row {i} " + "lorem ipsum " * 40 for i in range(n)]})
    ws = Workspace(tmp_path / "ws")
    ingest(ws, IngestParams(str(write_table(table, tmp_path / "big.parquet")), TextSpec(column="text")))
    rng = np.random.default_rng(7)
    outcomes = []
    for trial in range(4):
        out = tmp_path / f"out{trial}.{fmt}"
        child = subprocess.Popen(
            [sys.executable, "-c", EXPORT_CHILD.format(root=str(REPO_ROOT)), str(ws.root), str(out), str(n)],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "started"
        time.sleep(float(rng.uniform(0.0, 1.5)))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        if out.exists():
            from tests.fakes import read_any

            assert read_any(out).num_rows == n  # complete, never partial
            outcomes.append("complete")
        else:
            outcomes.append("absent")
        leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(f".out{trial}")]
        for p in leftovers:  # a killed writer may leave its temp file, never the final name
            assert ".tmp-" in p.name
        if leftovers:  # the next write of that path sweeps the dead writer's temp file
            from core.store.artifacts import atomic_write_bytes

            atomic_write_bytes(out, b"x")
            assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".out{trial}")]
            out.unlink()
    assert "absent" in outcomes, outcomes  # at least one kill landed mid-write


def test_sweep_keeps_live_writers_temp_files(tmp_path):
    from core.store.artifacts import sweep_stale_temps

    target = tmp_path / "out.parquet"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".out.parquet.tmp-{dead_pid}-abcd1234"
    live = tmp_path / f".out.parquet.tmp-{os.getppid()}-abcd1234"  # our parent is alive
    mine = tmp_path / f".out.parquet.tmp-{os.getpid()}-abcd1234"
    other = tmp_path / f".other.parquet.tmp-{dead_pid}-abcd1234"
    for p in (stale, live, mine, other):
        p.write_bytes(b"partial")
    assert sweep_stale_temps(target) == [stale]
    assert live.exists() and mine.exists() and other.exists() and not stale.exists()
