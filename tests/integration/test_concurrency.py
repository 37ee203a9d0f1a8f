"""Two processes or two sessions on one workspace: the second waits (or fails with a
clear message), nothing is corrupted, and results are shared rather than mixed up."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pyarrow as pa
import pytest

from core.stages.ingest import IngestParams, ingest
from core.stages.dataset import TextSpec, current_dataset
from core.engines.local import MapParams, build_map, load_map, run_selection
from core.selection import SelectParams
from core.store.workspace import Workspace
from tests.fakes import REPO_ROOT, HashEncoder, run_sieve, sieve_command, sieve_env, write_table


def _texts(n: int) -> pa.Table:
    words = ["bread", "python", "brakes", "garden", "chords", "lease", "budget", "vet", "oven", "sql"]
    return pa.table({"id": list(range(n)),
                     "text": [f"how do I fix my {words[i % 10]} and {words[(i * 3) % 10]} issue number {i}"
                              for i in range(n)]})


def test_second_cli_process_waits_then_reuses_the_result(tmp_path):
    path = write_table(_texts(300), tmp_path / "t.parquet")
    ws = tmp_path / "ws"
    assert run_sieve("ingest", path, "--text", "text", "-w", ws).returncode == 0
    env = sieve_env()
    first = subprocess.Popen(sieve_command() + ["embed", "-w", str(ws)], cwd=REPO_ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = ws / ".lock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "embedding" not in (lock.read_text() if lock.exists() else ""):
        time.sleep(0.05)
    assert "embedding" in lock.read_text()
    # The second waits for the first.  Its lock timeout is raised from the default 30 s so that a
    # loaded machine (the first embeds 300 texts) cannot turn "waits" into "gives up"; giving up
    # is the next test's subject.
    second = subprocess.run(sieve_command() + ["embed", "-w", str(ws)], cwd=REPO_ROOT, text=True,
                            env=dict(env, SIEVE_LOCK_TIMEOUT="300"), capture_output=True, timeout=400)
    out1, err1 = first.communicate(timeout=300)
    assert first.returncode == 0, err1
    assert second.returncode == 0, second.stderr
    assert "computed" in err1 and "(cached)" in second.stderr  # the second reused, did not redo or mix
    with Workspace(ws).connect() as con:
        n, distinct = con.execute("SELECT count(*), count(DISTINCT text_hash) FROM embed_cache").fetchall()[0]
    assert n == distinct == 300


def test_second_cli_process_fails_clearly_when_the_wait_is_too_long(tmp_path):
    path = write_table(_texts(20), tmp_path / "t.parquet")
    ws = Workspace(tmp_path / "ws")
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            sys.path.insert(0, {str(REPO_ROOT)!r})
            from core.store.workspace import Workspace
            with Workspace({str(ws.root)!r}).lock("a long stage"):
                print("holding", flush=True)
                time.sleep(8)
        """)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    before = current_dataset(ws)
    env = dict(sieve_env(), SIEVE_LOCK_TIMEOUT="1")
    proc = subprocess.run(sieve_command() + ["ingest", str(path), "--text", "id", "-w", str(ws.root)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    holder.kill()
    holder.wait()
    assert proc.returncode == 2
    msg = " ".join(proc.stderr.split())
    assert "busy" in msg and f"pid {holder.pid}" in msg and "a long stage" in msg and "Traceback" not in msg
    assert current_dataset(ws) == before  # untouched


def test_two_sessions_in_one_process_share_results_without_mixing(tmp_path):
    """Like two browser tabs: threads run the map at once; each keeps its own selection."""
    path = write_table(_texts(240), tmp_path / "t.parquet")
    ws = Workspace(tmp_path / "ws")
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    results, errors = {}, []

    def session(name: str, budget: int, seed: int):
        try:
            keys = build_map(ws, MapParams(), encoder=HashEncoder(dim=16))
            data = load_map(ws, keys)
            sel = run_selection(ws, data, SelectParams(budget=budget, seed=seed))
            results[name] = (keys.cluster, sorted(sel.row_ids.tolist()))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=session, args=(f"s{i}", 20 + 10 * i, i)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors
    assert len({r[0] for r in results.values()}) == 1  # the same map, computed once and shared
    sizes = {name: len(ids) for name, (_, ids) in results.items()}
    assert sizes == {"s0": 20, "s1": 30, "s2": 40}  # each session kept its own selection
    data = load_map(ws)
    for name, (_, ids) in results.items():
        i = int(name[1:])
        again = run_selection(ws, data, SelectParams(budget=20 + 10 * i, seed=i))
        assert sorted(again.row_ids.tolist()) == ids


@pytest.mark.parametrize("what", ["ingest", "map"])
def test_workspace_stays_readable_while_another_process_writes(what, tmp_path):
    """A reader (the app) never sees a half-built dataset or artifact."""
    path = write_table(_texts(200), tmp_path / "t.parquet")
    ws = Workspace(tmp_path / "ws")
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    build_map(ws, MapParams(), encoder=HashEncoder(dim=16))
    before = load_map(ws)
    path2 = write_table(_texts(260), tmp_path / "t2.parquet")
    args = ["ingest", str(path2), "--text", "text"] if what == "ingest" else ["map", "--min-cluster-size", "7"]
    proc = subprocess.Popen(sieve_command() + args + ["-w", str(ws.root)], cwd=REPO_ROOT, env=sieve_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = 0
    while proc.poll() is None:
        info = current_dataset(ws)  # always a whole, consistent dataset
        assert info.n_rows in (200, 260)
        seen += 1
        time.sleep(0.05)
    assert proc.returncode == 0, proc.stderr
    assert seen > 0
    assert np.array_equal(load_map(ws, before.keys).labels, before.labels)  # old artifacts intact
