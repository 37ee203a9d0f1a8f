"""`sieve select --pick facility-balanced` (core.selection.coverage): the manifest records the
pick, pins are in and bans out, and `sieve reproduce` rebuilds the same row ids."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
from typer.testing import CliRunner

from core.cli import app
from tests.fixtures.make_manifests import write_vectors_jsonl


def sieve(*args) -> str:
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, (args, res.output, res.exception)
    return res.output


def test_cli_manifest_and_reproduce_give_the_same_ids(tmp_path):
    data = write_vectors_jsonl(tmp_path / "topics_vectors.jsonl")
    ws = tmp_path / "ws"
    sieve("ingest", data, "--text", "text", "--vectors", "vec", "-w", ws)
    sieve("map", "-w", ws)
    sieve("select", "--budget", "45", "--pick", "facility-balanced", "--pin", "3", "--ban", "4,5", "-w", ws)
    out, man_path = tmp_path / "sub.parquet", tmp_path / "sub.manifest.json"
    sieve("export", "--out", out, "--manifest", man_path, "-w", ws)
    man = json.loads(man_path.read_text())
    assert (man["select"]["policy"], man["select"]["pick"]) == ("sqrt", "facility-balanced")
    ids = pq.read_table(out).column("sieve_row_id").to_pylist()
    assert len(ids) == 45 and 3 in ids and not {4, 5} & set(ids)
    again = tmp_path / "again.parquet"
    sieve("reproduce", man_path, "--data", data, "--out", again, "--manifest", tmp_path / "again.json",
          "-w", tmp_path / "ws2")
    assert sorted(pq.read_table(again).column("sieve_row_id").to_pylist()) == man["selected_row_ids"] == sorted(ids)
