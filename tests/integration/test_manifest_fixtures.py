"""Old manifests keep reproducing identical row ids (issue 13).

tests/fixtures/manifests/ holds manifests (and one map sidecar) written by the real
``sieve`` CLI at commit d51c7bc, before the restructure, by tests/fixtures/make_manifests.py
on its generated data.  Each test regenerates that data byte for byte into a temporary
folder, runs ``sieve reproduce MANIFEST --data FILE`` in a fresh workspace and checks that
the same row ids come back (``reproduce`` itself also refuses a different subset).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from core.cli import app
from core.stages.sources import fingerprint_files
from tests.fixtures.make_manifests import DATASETS, FIXTURE_DIR, RECIPES

FIXTURES = sorted(FIXTURE_DIR.glob("*.manifest.json"))
BY_FILE = {fname: writer for writer, fname, _ in DATASETS.values()}


def test_every_recipe_has_its_fixture():
    assert sorted(p.name.removesuffix(".manifest.json") for p in FIXTURES) == sorted(RECIPES)


def test_the_fixtures_cover_the_recipes_they_claim():
    man = {p.name.removesuffix(".manifest.json"): json.loads(p.read_text()) for p in FIXTURES}
    pins = man["vec_pins_bans"]
    assert {3, 5, 250} <= set(pins["selected_row_ids"]) and not {0, 1, 2, 4} & set(pins["selected_row_ids"])
    assert man["vec_tokens"]["select"]["budget_unit"] == "tokens"
    assert man["vec_strata_dedup"]["select"]["dedup"] == "exact"
    assert man["vec_strata_dedup"]["select"]["strata_column"] == "source"
    assert [e["op"] for e in man["vec_edits"]["curate"]["edits"]] == ["rename", "merge"]
    assert man["vec_sidecar_map"]["map"]["required"] and man["vec_sidecar_map"]["map"]["file"]
    assert (FIXTURE_DIR / man["vec_sidecar_map"]["map"]["file"]).is_file()
    assert not man["vec_default"]["map"]["required"]  # a seeded single-threaded map: recomputed
    assert man["text_model_random"]["dataset"]["vector_column"] is None  # the packaged model embeds it
    assert all(m["dataset"]["vector_column"] == "vec" for k, m in man.items() if k.startswith("vec_"))


@pytest.mark.parametrize("manifest_path", FIXTURES, ids=[p.name.removesuffix(".manifest.json") for p in FIXTURES])
def test_old_manifest_reproduces_identical_ids(manifest_path, tmp_path):
    man = json.loads(manifest_path.read_text())
    fname = Path(man["dataset"]["sources"][0]).name
    data = BY_FILE[fname](tmp_path / fname)
    # the generator still writes the very bytes the manifest was made from
    assert fingerprint_files([data]) == man["dataset"]["fingerprint"], f"{fname}: the generator's bytes changed"
    out, new_manifest = tmp_path / "again.parquet", tmp_path / "again.manifest.json"
    res = CliRunner().invoke(app, ["reproduce", str(manifest_path), "--data", str(data), "--out", str(out),
                                   "--manifest", str(new_manifest), "-w", str(tmp_path / "ws")])
    assert res.exit_code == 0, (res.output, res.exception)
    new = json.loads(new_manifest.read_text())
    assert new["selected_row_ids"] == man["selected_row_ids"]
    assert new["selected_ids_sha256"] == man["selected_ids_sha256"]
    assert sorted(pq.read_table(out).column("sieve_row_id").to_pylist()) == man["selected_row_ids"]
    # the recipe reads back unchanged (a newer Sieve may record more select keys, never other values)
    assert {k: new["select"].get(k) for k in man["select"]} == man["select"]
