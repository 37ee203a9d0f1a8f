"""Issue 12 through the CLI and reproduce: inline --pin/--ban lists of any length (kind 8),
and a CSV's delimiter and encoding recorded in the manifest and reproduced (kind 2).
"""

from __future__ import annotations

import json

import pytest

from core.cli.parse import parse_ids as _parse_ids
from core.stages.ingest import IngestParams, ingest
from core.stages.dataset import TextSpec
from core.store.workspace import SieveError, Workspace
from tests.fakes import run_sieve


def test_inline_id_lists_of_any_length(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    long = ",".join(str(i) for i in range(1000))  # far beyond a file name's 255 characters
    assert _parse_ids(long, "ban") == tuple(range(1000))
    assert _parse_ids("3, 5 7,,9", "pin") == (3, 5, 7, 9)
    (tmp_path / "ids.txt").write_text("1\n2, 3\n")
    assert _parse_ids("ids.txt", "pin") == (1, 2, 3)
    (tmp_path / "12").write_text("4,5")  # a value is a file only when that file exists
    assert _parse_ids("12", "pin") == (4, 5)
    assert _parse_ids("13", "pin") == (13,)
    with pytest.raises(SieveError, match=r"--ban: 'x7' is not a row id"):
        _parse_ids(long + ",x7", "ban")
    (tmp_path / "bad.txt").write_text("1\ntwo\n")
    with pytest.raises(SieveError, match=r"--pin: 'two' in file bad.txt is not a row id"):
        _parse_ids("bad.txt", "pin")


def test_cli_select_takes_a_ban_list_longer_than_a_file_name(sieve_fake_map, tmp_path):
    import shutil

    ws = tmp_path / "ws"
    shutil.copytree(sieve_fake_map.ws.root, ws)  # the session map stays read-only
    ids = [int(i) for i in sieve_fake_map.data.row_ids[:100]]
    out = tmp_path / "o.jsonl"
    proc = run_sieve("select", "--budget", "5", "--ban", ",".join(map(str, ids)), "-w", ws)
    assert proc.returncode == 0, proc.stderr
    proc = run_sieve("export", "--out", out, "-w", ws)
    assert proc.returncode == 0, proc.stderr
    chosen = [json.loads(x)["sieve_row_id"] for x in out.read_text().split("\n") if x]
    assert len(chosen) == 5 and not set(chosen) & set(ids)
    proc = run_sieve("select", "--budget", "5", "--ban", ",".join(map(str, ids)) + ",7x", "-w", ws)
    assert proc.returncode == 2 and "'7x' is not a row id" in proc.stderr and "Traceback" not in proc.stderr


def test_delimiter_and_encoding_go_into_the_manifest_and_reproduce(tmp_path):
    from core.manifest import build_manifest, read_manifest, write_manifest
    from core.engines.local import MapParams, build_map, load_map, reproduce, run_selection
    from core.stages.project import ProjectParams
    from core.selection import SelectParams
    from tests.fakes import HashEncoder

    rows = "".join(f"{i};Grüße et café n°{i} {'àéîõü'[i % 5] * (i % 7)};{i % 3},5\n" for i in range(40))
    path = tmp_path / "latin.csv"
    path.write_bytes(("id;text;score\n" + rows).encode("latin-1"))
    ws = Workspace(tmp_path / "ws")
    info, _ = ingest(ws, IngestParams(str(path), TextSpec(column="text"), encoding="latin-1"))
    assert info.delimiter == ";" and info.encoding == "iso8859-1" and info.n_rows == 40
    params = MapParams(project=ProjectParams(exact=True))
    enc = HashEncoder()
    data = load_map(ws, build_map(ws, params, encoder=enc))
    sel_params = SelectParams(budget=10, seed=1)
    sel = run_selection(ws, data, sel_params)
    mpath = tmp_path / "m.json"
    write_manifest(mpath, build_manifest(data, params, sel_params, sel), data)
    man = read_manifest(mpath)
    assert man["dataset"]["delimiter"] == ";" and man["dataset"]["encoding"] == "iso8859-1"
    _, again, _, _ = reproduce(Workspace(tmp_path / "fresh"), man, encoder=enc, manifest_path=mpath)
    assert again.row_ids.tolist() == sel.row_ids.tolist()
