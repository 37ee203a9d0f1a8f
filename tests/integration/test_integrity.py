"""Integrity under concurrency and corruption (issue 15 items 1-4, 10, 11).

- An export racing a dataset change (real processes) never pulls the old selection's
  ids from the new dataset; the app's lazy download refuses once the dataset changed.
- Artifacts carry checksums; flipped bytes fail with one line naming the file.
- A data file and its manifest never disagree: the manifest carries the data's sha256
  and is published first, so an interrupted re-export is detectable, never silent.
- A failed ``sieve reproduce`` leaves the workspace as it found it.
- Malformed manifests, out-of-range seeds, a full disk and truncated files give one
  line and exit 2.
- Two sessions of one server queue on each other's long stage instead of failing.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import numpy as np
import pyarrow as pa
import pytest

from core.stages.ingest import IngestParams, ingest
from core.stages.dataset import TextSpec, current_dataset
from core.engines.local import MapParams, build_map, load_map, run_selection
from core.selection import SelectParams
from core.store.workspace import SieveError, Workspace
from tests.fakes import HashEncoder, SlowEncoder, read_any, run_sieve, start_sieve, write_table


def _table_a(n: int = 240) -> pa.Table:
    words = ["bread", "python", "brakes", "garden", "chords", "lease", "budget", "vet", "oven", "sql"]
    return pa.table({"id": list(range(n)), "a_only": [f"a{i}" for i in range(n)],
                     "text": [f"A: how do I fix my {words[i % 10]} and {words[(i * 3) % 10]} #{i}" for i in range(n)]})


def _table_b(n: int = 500) -> pa.Table:
    return pa.table({"b_only": [i * 10 for i in range(n)], "text": [f"B: another question {i}" for i in range(n)]})


def _mapped_ws(tmp_path, name: str = "ws", budget: int = 30) -> tuple[Workspace, object, object]:
    """A workspace with dataset A, a map (fake encoder) and a saved selection."""
    path = write_table(_table_a(), tmp_path / "a.parquet")
    ws = Workspace(tmp_path / name)
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    build_map(ws, MapParams(), encoder=HashEncoder(dim=16))
    ws.set_meta("selection", SelectParams(budget=budget, seed=1).to_dict())
    return ws, path, load_map(ws)


def _one_line_exit_2(proc) -> str:
    msg = " ".join(proc.stderr.split())
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr
    return msg


# -- item 1: an export racing a dataset change ------------------------------------------------


def test_export_racing_an_ingest_never_mixes_datasets(tmp_path):
    """`sieve export & sleep D; sieve ingest other.csv`: at every delay the exported rows are
    dataset A's rows (texts, columns, manifest fingerprint), or the export fails clearly."""
    ws, a_path, _ = _mapped_ws(tmp_path)
    a_info = current_dataset(ws)
    a_text = dict(enumerate(_table_a().column("text").to_pylist()))
    b_path = write_table(_table_b(), tmp_path / "other.csv")
    outcomes = []
    for trial, delay in enumerate([0.0, 0.3, 0.6, 1.0, 1.6]):
        if trial:  # back to dataset A and its map (all cached)
            ingest(ws, IngestParams(str(a_path), TextSpec(column="text")))
            build_map(ws, MapParams(), encoder=HashEncoder(dim=16))
        out = tmp_path / f"b{trial}.parquet"
        export = start_sieve("export", "--out", out, "-w", ws.root)
        time.sleep(delay)
        ing = run_sieve("ingest", b_path, "--text", "text", "-w", ws.root, timeout=300)
        e_out, e_err = export.communicate(timeout=300)
        assert ing.returncode == 0, ing.stderr
        assert current_dataset(ws).n_rows == 500  # the ingest did happen
        if export.returncode != 0:
            assert export.returncode == 2 and "Traceback" not in e_err, e_err
            assert not out.exists()
            outcomes.append("refused")
            continue
        rows = read_any(out)
        assert "a_only" in rows.column_names and "b_only" not in rows.column_names
        texts = rows.column("text").to_pylist()
        ids = rows.column("sieve_row_id").to_pylist() if "sieve_row_id" in rows.column_names else None
        assert all(t.startswith("A: ") for t in texts), texts[:3]
        if ids is not None:
            assert all(a_text[i] == t for i, t in zip(ids, texts))
        man = json.loads((tmp_path / f"b{trial}.parquet.manifest.json").read_text())
        assert man["dataset"]["fingerprint"] == a_info.fingerprint
        assert sorted(int(i) for i in rows.column("id").to_pylist()) == man["selected_row_ids"]
        outcomes.append("consistent")
    assert outcomes.count("consistent") >= 3, outcomes  # the lock makes the ingest wait, not the export fail


def test_lazy_download_refuses_rows_of_a_changed_dataset(tmp_path):
    """The Download button's builder runs on click: if another process changed the dataset
    since the page was drawn, it fails with one line instead of pulling the new rows."""
    from core.explore_files import export_bytes

    ws, _, data = _mapped_ws(tmp_path)
    sel = run_selection(ws, data, SelectParams(budget=20, seed=0))
    ok = export_bytes(ws, sel, data.cluster_names, "csv", dataset_key=data.keys.dataset)
    assert ok.count(b"A: ") == 20
    b_path = write_table(_table_b(), tmp_path / "other.csv")
    assert run_sieve("ingest", b_path, "--text", "text", "-w", ws.root).returncode == 0  # another process
    with pytest.raises(SieveError, match="dataset changed"):
        export_bytes(ws, sel, data.cluster_names, "csv", dataset_key=data.keys.dataset)
    # the map of the old dataset still loads with *its own* dataset, never the new one
    again = load_map(ws, data.keys)
    assert again.dataset.key == data.keys.dataset and again.dataset.n_rows == 240


# -- item 3: data and manifest pairs ---------------------------------------------------------


def test_manifest_carries_the_data_hash_and_reproduce_checks_it(tmp_path):
    from core.manifest import verify_export
    from core.store.artifacts import file_sha256

    ws, _, _ = _mapped_ws(tmp_path)
    out = tmp_path / "s.parquet"
    assert run_sieve("export", "--out", out, "-w", ws.root).returncode == 0
    mpath = tmp_path / "s.parquet.manifest.json"
    man = json.loads(mpath.read_text())
    assert man["export"]["sha256"] == file_sha256(out) and man["export"]["file"] == "s.parquet"
    assert verify_export(man, mpath) is None
    # a re-export with another budget, killed after the data was written but with the old manifest beside it
    old_bytes = out.read_bytes()
    ws.set_meta("selection", SelectParams(budget=10, seed=1).to_dict())
    out2 = tmp_path / "t.parquet"
    assert run_sieve("export", "--out", out2, "-w", ws.root).returncode == 0
    out.write_bytes(out2.read_bytes())  # new data beside the old manifest
    problem = verify_export(man, mpath)
    assert problem and "does not match" in problem and str(out) in problem
    r = run_sieve("verify", mpath)
    assert "does not match" in _one_line_exit_2(r)
    out.write_bytes(old_bytes)
    assert run_sieve("verify", mpath).returncode == 0


@pytest.mark.parametrize("fail_at", ["manifest", "map", "data"])
def test_interrupted_reexport_never_leaves_new_data_beside_old_manifest(tmp_path, monkeypatch, fail_at):
    """A re-export to an existing name that dies at each publish step leaves either the old
    pair intact, or a new manifest that the old data fails (detectable), never the reverse."""
    import core.manifest as E  # export_with_manifest and write_manifest live there
    from core.manifest import build_manifest, export_with_manifest, verify_export

    ws, _, data = _mapped_ws(tmp_path)
    params = MapParams.from_dict(ws.get_meta("map")["params"])
    out, mpath = tmp_path / "s.parquet", tmp_path / "s.parquet.manifest.json"

    def write(budget):
        sel = run_selection(ws, data, SelectParams(budget=budget, seed=1))
        man = build_manifest(data, params, SelectParams(budget=budget, seed=1), sel)
        man["map"]["required"] = True  # as for a parallel UMAP map: the map file travels with it
        return export_with_manifest(ws, sel, data.cluster_names, out, "parquet", mpath, man, data,
                                    dataset_key=data.keys.dataset)

    write(30)
    old_data, old_man = out.read_bytes(), mpath.read_bytes()
    real_publish, real_atomic = E.publish, E.atomic_write_json

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    if fail_at == "manifest":
        monkeypatch.setattr(E, "atomic_write_json", boom)
    else:
        def publish(tmp, path):
            if (fail_at == "data" and path == out.resolve()) or (fail_at == "map" and path.suffix == ".npz"):
                raise E.disk_error(OSError(28, "No space left on device"), path)
            real_publish(tmp, path)
        monkeypatch.setattr(E, "publish", publish)
    with pytest.raises(SieveError) as info:
        write(10)
    msg = str(info.value)
    assert "no space left" in msg and "previous file is intact" in msg and "\n" not in msg
    monkeypatch.setattr(E, "publish", real_publish)
    monkeypatch.setattr(E, "atomic_write_json", real_atomic)
    assert out.read_bytes() == old_data  # the data file is never replaced before its manifest
    man = json.loads(mpath.read_text())
    if mpath.read_bytes() == old_man:
        assert verify_export(man, mpath) is None  # the old pair, intact
    else:
        assert man["n_selected"] == 10 and verify_export(man, mpath)  # new manifest: mismatch detected
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_disk_full_during_export_is_one_line_naming_the_file(tmp_path, monkeypatch):
    """The CLI export with DuckDB's COPY failing for lack of space: exit 2, one line naming
    the file and saying the previous file is intact."""
    import duckdb
    from typer.testing import CliRunner

    import core.manifest as E  # export_with_manifest and write_manifest live there
    from core.cli import app

    ws, _, _ = _mapped_ws(tmp_path)
    out = tmp_path / "s.csv"
    out.write_text("previous\n")
    real = E.copy_rows

    def full(ws_, selection, names, tmp, fmt, **kw):
        tmp.write_bytes(b"partial")
        try:
            raise duckdb.IOException(f'IO Error: Could not write file "{tmp}": No space left on device')
        except duckdb.IOException as exc:
            raise E.disk_error(exc, kw["target"]) from exc

    monkeypatch.setattr(E, "copy_rows", full)
    res = CliRunner().invoke(app, ["export", "--out", str(out), "-w", str(ws.root)])
    monkeypatch.setattr(E, "copy_rows", real)
    assert res.exit_code == 2, res.output
    line = " ".join(res.output.split())
    assert f"could not write {out.resolve()}" in line and "no space left on device" in line
    assert "previous file is intact" in line and "Traceback" not in res.output
    assert out.read_text() == "previous\n"
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


# -- item 11: two sessions computing at once --------------------------------------------------


def test_second_session_queues_behind_a_long_stage_instead_of_failing(tmp_path):
    """Two sessions (threads of one server) press Compute map with different settings; the
    first holds the workspace far longer than the lock timeout.  The second waits, is told
    it is waiting and for whom, and then computes its own map: no "busy" error."""
    path = write_table(_table_a(300), tmp_path / "a.parquet")
    ws = Workspace(tmp_path / "ws", lock_timeout=0.5)  # the holder runs longer than this
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    waits, errors, keys, done_at = [], [], {}, {}
    started = threading.Event()

    def first():
        try:
            def on_stage(stage, event, info):
                if stage == "embed" and event == "start":
                    started.set()
            from core.stages.embed import EmbedParams

            params = MapParams(embed=EmbedParams(batch_size=4))
            keys["first"] = build_map(ws, params, encoder=SlowEncoder(dim=16), on_stage=on_stage)
            done_at["first"] = time.monotonic()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))
            started.set()

    def second():
        try:
            from core.stages.cluster import ClusterParams

            params = MapParams(cluster=ClusterParams(min_cluster_size=9))
            keys["second"] = build_map(ws, params, encoder=HashEncoder(dim=16), on_wait=waits.append)
            done_at["second"] = time.monotonic()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    t1 = threading.Thread(target=first)
    t1.start()
    assert started.wait(60)
    t2 = threading.Thread(target=second)
    t2.start()
    t1.join(300)
    t2.join(300)
    assert not errors, errors
    assert done_at["second"] > done_at["first"]  # it queued behind the first
    assert len(waits) == 1 and f"pid {os.getpid()} is running the map since" in waits[0], waits
    assert keys["first"].cluster != keys["second"].cluster  # each computed its own settings


def test_another_process_still_times_out_with_a_clear_message(tmp_path):
    """The queue is for sessions of one process; another process still gets the timeout."""
    ws = Workspace(tmp_path / "ws")
    holder = subprocess.Popen(
        [os.sys.executable, "-c",
         "import sys,time;sys.path.insert(0,'.');from core.store.workspace import Workspace\n"
         f"with Workspace({str(ws.root)!r}).lock('the map'):\n print('holding',flush=True);time.sleep(6)"],
        stdout=subprocess.PIPE, text=True, cwd=str(__import__('tests.fakes').fakes.REPO_ROOT))
    assert holder.stdout.readline().strip() == "holding"
    told = []
    with pytest.raises(SieveError, match=f"busy \\(pid {holder.pid} is running the map since"):
        with Workspace(ws.root, lock_timeout=1).lock("ingest", on_wait=told.append):
            pass
    holder.kill()
    holder.wait()
    assert len(told) == 1 and f"pid {holder.pid}" in told[0]


# -- item 4: a failed reproduce leaves the workspace as it found it ------------------------------


def _snapshot(ws: Workspace) -> dict:
    from tests.fakes import query_table

    rows = query_table(ws, "SELECT * EXCLUDE (sieve_text_ok) FROM dataset ORDER BY sieve_row_id")
    return {"meta": {k: ws.get_meta(k) for k in ("dataset", "map", "selection")},
            "rows": rows.to_pylist(),
            "tables": sorted(r["name"] for r in query_table(ws, "SELECT table_name AS name FROM duckdb_tables()").to_pylist())}


def _manifest_of_a(tmp_path) -> tuple[dict, object]:
    from core.manifest import read_manifest

    ws_a, a_path, _ = _mapped_ws(tmp_path, "ws_a", budget=25)
    assert run_sieve("export", "--out", tmp_path / "a_sub.parquet", "-w", ws_a.root).returncode == 0
    mpath = tmp_path / "a_sub.parquet.manifest.json"
    return read_manifest(mpath), mpath


def _ws_b(tmp_path) -> Workspace:
    ws = Workspace(tmp_path / "ws_b")
    ingest(ws, IngestParams(str(write_table(_table_b(), tmp_path / "b.parquet")), TextSpec(column="text")))
    build_map(ws, MapParams(), encoder=HashEncoder(dim=16))
    ws.set_meta("selection", SelectParams(budget=12, seed=3).to_dict())
    return ws


def test_failed_cli_reproduce_leaves_the_workspace_as_it_was(tmp_path):
    """`sieve reproduce` with changed data fails after it has ingested that data: the
    workspace's dataset, map and selection are put back, and the old export still works."""
    man, mpath = _manifest_of_a(tmp_path)
    ws = _ws_b(tmp_path)
    before = _snapshot(ws)
    changed = write_table(_table_a(241), tmp_path / "changed.parquet")  # one more row: another fingerprint
    r = run_sieve("reproduce", mpath, "--data", changed, "--out", tmp_path / "again.parquet", "-w", ws.root)
    assert "differs from the data the manifest was made from" in _one_line_exit_2(r)
    assert _snapshot(ws) == before
    assert not (tmp_path / "again.parquet").exists()
    ok = run_sieve("export", "--out", tmp_path / "b_sub.csv", "-w", ws.root)
    assert ok.returncode == 0, ok.stderr
    assert read_any(tmp_path / "b_sub.csv").num_rows == 12


def test_reproduce_whose_ids_differ_restores_the_workspace(tmp_path):
    from core.engines.local import reproduce

    man, mpath = _manifest_of_a(tmp_path)
    ws = _ws_b(tmp_path)
    before = _snapshot(ws)
    tampered = dict(man, selected_row_ids=sorted(set(man["selected_row_ids"][1:]) | {239 if 239 not in
                                                                                       man["selected_row_ids"] else 238}))
    with pytest.raises(SieveError, match="differs from the manifest"):
        reproduce(ws, tampered, encoder=HashEncoder(dim=16), manifest_path=mpath)
    assert _snapshot(ws) == before
    # the untampered manifest reproduces, and switches the workspace to its data (success)
    _, sel, _, _ = reproduce(ws, man, encoder=HashEncoder(dim=16), manifest_path=mpath)
    assert sorted(sel.row_ids.tolist()) == man["selected_row_ids"]
    assert current_dataset(ws).n_rows == 240
    assert "sieve_previous_dataset" not in _snapshot(ws)["tables"]


# -- item 2 and 10: corrupted and truncated artifacts ---------------------------------------------


def _flip_bytes(path, at: float = 0.6, n: int = 8) -> None:
    raw = bytearray(path.read_bytes())
    i = int(len(raw) * at)
    raw[i:i + n] = bytes(b ^ 0x7F for b in raw[i:i + n])  # same size, other bytes
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("stage,name,damage", [
    ("cluster", "labels.npy", "flip"), ("embed", "vectors.npy", "flip"), ("project", "xy.npy", "truncate"),
    ("cluster", "meta.json", "truncate"), ("project", "meta.json", "flip"),
])
def test_damaged_artifact_fails_with_one_line_naming_the_file(tmp_path, stage, name, damage):
    """Same-size byte flips (a different subset before) and truncations (a traceback before)
    fail `sieve select` with one line naming the file and how to recompute; deleting the
    folder as told and recomputing gives back the very same selection."""
    import shutil

    ws, _, data = _mapped_ws(tmp_path)
    want = sorted(run_selection(ws, data, SelectParams(budget=30, seed=1)).row_ids.tolist())
    key = getattr(data.keys, stage)
    path = ws.artifact_dir(stage, key) / name
    if damage == "flip":
        _flip_bytes(path)
    else:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    r = run_sieve("select", "--budget", "30", "--seed", "1", "-w", ws.root)
    msg = _one_line_exit_2(r)
    assert str(path) in msg and "is corrupt" in msg and "recompute" in msg, msg
    shutil.rmtree(ws.artifact_dir(stage, key))  # what the message says to do
    keys = build_map(ws, MapParams(), encoder=HashEncoder(dim=16))
    again = run_selection(ws, load_map(ws, keys), SelectParams(budget=30, seed=1))
    assert sorted(again.row_ids.tolist()) == want


def test_old_artifacts_without_checksums_still_load(tmp_path):
    """Artifacts written before checksums existed are accepted (shape/dtype still checked)."""
    ws, _, data = _mapped_ws(tmp_path)
    meta_path = ws.artifact_dir("cluster", data.keys.cluster) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta.pop("checksums"), meta.pop("meta_checksum")
    meta_path.write_text(json.dumps(meta))
    again = load_map(ws, data.keys)
    assert np.array_equal(again.labels, data.labels)


def test_checksums_are_verified_once_per_process(tmp_path):
    """Loading a map twice hashes each file once (memo on size, mtime and inode)."""
    import core.store.artifacts as W

    ws, _, data = _mapped_ws(tmp_path)
    W._verified.clear()
    calls = []
    real = W.file_checksum
    W.file_checksum = lambda p: calls.append(str(p)) or real(p)
    try:
        load_map(ws, data.keys)
        first = len(calls)
        load_map(ws, data.keys)
    finally:
        W.file_checksum = real
    assert first >= 3 and len(calls) == first


def test_truncated_or_corrupt_cache_chunk_is_recomputed(tmp_path):
    """A cache chunk cut short or with flipped bytes is not used: its texts are embedded again
    and the vectors equal those of an undamaged run."""
    import shutil

    from core.stages.embed import EmbedParams, load_embeddings, run_embed

    ws, _, data = _mapped_ws(tmp_path)
    _, want = load_embeddings(ws, data.keys.embed)
    want = np.array(want)
    chunks = sorted((ws.root / "cache" / "embed").rglob("*.npy"))
    assert chunks
    chunks[0].write_bytes(chunks[0].read_bytes()[:100])
    if len(chunks) > 1:
        _flip_bytes(chunks[1])
    shutil.rmtree(ws.artifact_dir("embed", data.keys.embed))
    res = run_embed(ws, EmbedParams(), encoder=HashEncoder(dim=16))
    assert res.n_computed > 0
    assert np.array_equal(np.asarray(load_embeddings(ws, res.key)[1]), want)


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_damaged_workspace_database_is_named_not_called_busy(tmp_path, damage):
    ws, _, _ = _mapped_ws(tmp_path)
    db = ws.db_path
    if damage == "empty":
        db.write_bytes(b"")
    elif damage == "truncated":
        db.write_bytes(db.read_bytes()[:20000])
    else:
        db.write_bytes(os.urandom(4096))
    t0 = time.monotonic()
    r = run_sieve("info", "-w", ws.root)
    msg = _one_line_exit_2(r)
    assert time.monotonic() - t0 < 20  # no 30 s wait for a lock nobody holds
    assert str(db) in msg and "in use by another process" not in msg and "busy" not in msg
    assert ("empty" if damage == "empty" else "damaged") in msg


# -- item 10: malformed manifests and early parameter checks ------------------------------------


@pytest.mark.parametrize("edit,named", [
    (lambda m: m.update(manifest_version="9"), "manifest_version"),
    (lambda m: m.update(manifest_version=True), "manifest_version"),
    (lambda m: m["dataset"].update(sources=12345), "dataset.sources"),
    (lambda m: m["dataset"].update(sources=["a\x00b"]), "dataset.sources"),
    (lambda m: m.update(surprise=1), "surprise"),
    (lambda m: m["dataset"].update(surprise=1), "dataset.surprise"),
    (lambda m: m["project"]["params"].update(seed=2**80), "seed"),
    (lambda m: m["select"].update(seed=-1), "select"),
    (lambda m: m["select"].update(budget="ten"), "budget"),
    (lambda m: m["cluster"].update(params=[1]), "cluster.params"),
    (lambda m: m.update(model="x"), "model"),
    (lambda m: m.update(selected_row_ids=[1, "2"]), "selected_row_ids"),
    (lambda m: m["model"]["params"].update(batch_size=None), "model.params"),
])
def test_malformed_manifest_is_one_line_exit_2(tmp_path, edit, named):
    ws, _, _ = _mapped_ws(tmp_path)
    assert run_sieve("export", "--out", tmp_path / "s.parquet", "-w", ws.root).returncode == 0
    mpath = tmp_path / "s.parquet.manifest.json"
    man = json.loads(mpath.read_text())
    edit(man)
    mpath.write_text(json.dumps(man))
    before = _snapshot(ws)
    for cmd in (["reproduce", mpath, "--out", tmp_path / "again.parquet", "-w", ws.root], ["verify", mpath]):
        msg = _one_line_exit_2(run_sieve(*cmd))
        assert str(mpath) in msg and named in msg, msg
    assert _snapshot(ws) == before


def test_map_seed_out_of_range_fails_before_any_stage(tmp_path):
    ws, _, _ = _mapped_ws(tmp_path)
    lock_before = (ws.root / ".lock").read_text()
    t0 = time.monotonic()
    msg = _one_line_exit_2(run_sieve("map", "--seed", "4294967296", "-w", ws.root))
    assert "seed" in msg and "4294967296" in msg
    assert (ws.root / ".lock").read_text() == lock_before  # no stage took the lock
    assert time.monotonic() - t0 < 30


def test_nul_in_an_upload_or_path_name_is_a_clear_error_and_the_page_recovers(tmp_path, monkeypatch):
    """A NUL (or another control character) in a name: the upload is saved under a safe
    name; the path box shows one st.error line and the page keeps working."""
    from core.explore_files import save_upload
    from tests.app_fixtures import new_app

    saved = save_upload(tmp_path, "da\x00ta\x1b[31m.csv", b"text\nhello\n")
    assert saved.parent == tmp_path / "uploads" and "\x00" not in saved.name and saved.name.endswith("da_ta_31m.csv")
    monkeypatch.setenv("SIEVE_WORKSPACE", str(tmp_path / "ws"))
    good = tmp_path / "good.csv"
    good.write_text("prompt\nhello world\nsecond row\n")
    at = new_app(timeout=240).run()
    at.radio(key="w.source_kind").set_value("Path or glob").run()
    at.text_input(key="w.source_path").input(str(tmp_path / "bad\x00name.csv")).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("control character" in e for e in errors) and all("\n" not in e for e in errors), errors
    at.text_input(key="w.source_path").input(str(good)).run()
    assert not at.exception and not at.error
    assert at.selectbox(key="w.text_column").options  # the page goes on: the columns are offered


def test_with_default_settings_a_session_waits_out_a_stage_longer_than_the_lock_timeout(tmp_path):
    """The server process with *default* settings (no SIEVE_LOCK_TIMEOUT): one session holds
    the workspace for longer than the default 30 s; the other waits, is told so, and runs."""
    import sys
    import textwrap

    from tests.fakes import REPO_ROOT, sieve_env

    script = textwrap.dedent(f"""
        import sys, threading, time
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from core.store.workspace import Workspace
        ws = Workspace({str(tmp_path / 'ws')!r})
        assert ws.lock_timeout == 30, ws.lock_timeout
        held = threading.Event()
        def first():
            with ws.lock("the map"):
                held.set()
                time.sleep(ws.lock_timeout + 3)
        t = threading.Thread(target=first)
        t.start()
        held.wait()
        t0 = time.monotonic()
        with ws.lock("the map", on_wait=lambda h: print("waiting:", h, flush=True)):
            print(f"ran after {{time.monotonic() - t0:.0f}} s", flush=True)
        t.join()
    """)
    env = {k: v for k, v in sieve_env().items() if k != "SIEVE_LOCK_TIMEOUT"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("waiting: pid ") and "is running the map since" in lines[0], lines
    assert lines[1].startswith("ran after") and int(lines[1].split()[2]) >= 30
