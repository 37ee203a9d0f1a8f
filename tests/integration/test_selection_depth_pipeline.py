"""Selection depth through the workspace, the export, the manifest, ``reproduce`` and
the CLI, on a copy of the fake-encoder map (the session map itself stays untouched)."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pyarrow as pa
import pytest

from core.stages.export import export_rows
from core.manifest import build_manifest, read_manifest, write_manifest
from core.engines.local import load_map, reproduce, run_selection, selection_report
from core.selection import SelectParams
from core.store.workspace import SieveError, Workspace
from tests.fakes import TopicEncoder, read_any, write_table


@pytest.fixture(scope="module")
def depth_map(sieve_fake_map, tmp_path_factory):
    """(workspace copy, MapData, fixture, reference file path) -- tests may write caches here."""
    root = tmp_path_factory.mktemp("depth")
    shutil.copytree(sieve_fake_map.ws.root, root / "ws")
    ws = Workspace(root / "ws")
    data = load_map(ws)
    texts = sieve_fake_map.table.column("text").to_pylist()
    # an eval set: 6 verbatim copies of dataset rows (leaks) + 4 unrelated texts
    leaked = [texts[i] for i in (3, 40, 77, 150, 222, 301)]
    ref = write_table(pa.table({"prompt": leaked + ["zebra migration patterns", "quantum chromodynamics basics",
                                                     "medieval tapestry dyes", "volcanic soil chemistry"]}),
                      root / "eval.jsonl")
    return ws, data, sieve_fake_map, ref


def _encoder(m):
    return TopicEncoder(dict(m.encoder.text_topics))


def test_everything_at_once_then_reproduce_in_a_fresh_workspace(depth_map, tmp_path):
    ws, data, m, ref = depth_map
    params = SelectParams(budget=1500, budget_unit="tokens", tokenizer="model", pick="facility", dedup="near",
                          near_dup_threshold=0.985, soft_noise_threshold=0.05, strata_column="source",
                          reference_path=str(ref), reference_text="prompt", leakage="drop", seed=2, pins=(10,))
    sel = run_selection(ws, data, params, encoder=_encoder(m))
    assert sel.stats["tokens_used"] <= 1500 and sel.tokens.sum() == sel.stats["tokens_used"]
    assert sel.stats["leaked"] >= 6
    leaked_ids = set(sel.stats["leaked_row_ids"])
    assert {3, 40, 77, 150, 222, 301} <= leaked_ids
    assert not leaked_ids & set(sel.row_ids.tolist())
    assert 10 in sel.row_ids.tolist()
    assert "strata" in sel.stats and sel.group_sizes is not None

    metrics = selection_report(data, sel, params)
    assert metrics.reference_coverage is not None and "reference_coverage" in metrics.random
    man = json.loads(json.dumps(build_manifest(data, m.params, params, sel, metrics, {"path": "x"})))
    assert man["select"]["dedup"] == "near" and man["select"]["budget_unit"] == "tokens"
    assert man["selection"]["tokens_used"] == sel.stats["tokens_used"]
    assert man["metrics"]["random"]["coverage"] == metrics.random["coverage"]
    assert {r["key"] for r in man["metrics"]["comparison"]} >= {"coverage", "jsd", "facility", "dup_rate"}
    path = write_manifest(tmp_path / "m.json", man)

    data2, again, map_params, sel_params = reproduce(Workspace(tmp_path / "fresh"), read_manifest(path),
                                                     encoder=_encoder(m))
    assert sel_params == params and map_params == m.params
    assert again.row_ids.tolist() == sel.row_ids.tolist()
    assert again.ranks.tolist() == sel.ranks.tolist() and again.reasons == sel.reasons
    assert again.group_sizes.tolist() == sel.group_sizes.tolist()
    assert again.stats == sel.stats


def test_dedup_export_has_group_sizes_and_optionally_the_duplicates(depth_map, tmp_path):
    ws, data, m, _ = depth_map
    # a loose threshold for the fake encoder (members of a topic have cosine ~0.98), so groups form
    params = SelectParams(budget=30, dedup="near", near_dup_threshold=0.985, pick="core")
    sel = run_selection(ws, data, params)
    assert sel.stats["duplicate_rows"] > 0 and (sel.group_sizes > 1).any()
    out = export_rows(ws, sel, data.cluster_names, tmp_path / "s.parquet")
    t = read_any(out)
    assert t.column_names[-1] == "sieve_group_size" and t.num_rows == 30
    size_of = dict(zip(sel.row_ids.tolist(), sel.group_sizes.tolist()))
    assert all(size_of[r] == g for r, g in zip(t.column("sieve_row_id").to_pylist(),
                                               t.column("sieve_group_size").to_pylist()))
    full = read_any(export_rows(ws, sel, data.cluster_names, tmp_path / "all.jsonl", include_duplicates=True))
    assert full.num_rows == 30 + len(sel.duplicate_positions)
    rows = full.to_pylist()
    chosen = set(sel.row_ids.tolist())
    dups = [r for r in rows if r["sieve_reason"].startswith("duplicate-of:")]
    assert len(dups) == len(sel.duplicate_positions) > 0
    for r in dups:
        of = int(r["sieve_reason"].split(":")[1])
        assert of in chosen and r["sieve_row_id"] not in chosen and r["sieve_rank"] == 0
        assert r["sieve_group_size"] == size_of[of]
    # each chosen row's group: itself + its listed duplicates = its group size (nothing banned here)
    per = {r: 1 for r in chosen}
    for r in dups:
        per[int(r["sieve_reason"].split(":")[1])] += 1
    assert per == size_of


def test_soft_noise_through_the_map(depth_map):
    ws, data, _, _ = depth_map
    assert data.soft_labels is not None
    noise = data.labels == -1
    expect = int((noise & (data.soft_strength >= 0.05) & (data.soft_labels >= 0)).sum())
    sel = run_selection(ws, data, SelectParams(budget=50, soft_noise_threshold=0.05))
    assert sel.stats["soft_noise_moved"] == expect
    assert (sel.labels[noise & (data.soft_strength >= 0.05)] >= 0).all()


def test_strata_through_the_workspace(depth_map):
    ws, data, m, _ = depth_map
    sel = run_selection(ws, data, SelectParams(budget=60, strata_column="source",
                                               strata_bounds={"forum": (None, 1)}))
    src = np.asarray(m.table.column("source").to_pylist(), dtype=object)[sel.row_ids]
    for c in set(sel.clusters.tolist()):
        assert int((src[sel.clusters == c] == "forum").sum()) <= 1
    with pytest.raises(SieveError, match="strata_column"):
        run_selection(ws, data, SelectParams(budget=10, strata_column="no_such_column"))


def test_cli_select_and_export_with_depth_flags(depth_map, tmp_path):
    from typer.testing import CliRunner

    from core.cli import app

    ws, _, m, ref = depth_map
    root = tmp_path / "ws"
    shutil.copytree(ws.root, root)
    runner = CliRunner()
    res = runner.invoke(app, ["select", "-w", str(root), "--budget", "800", "--budget-unit", "tokens",
                              "--tokenizer", "words", "--pick", "mmr", "--mmr-lambda", "0.3", "--dedup", "exact",
                              "--strata", "lang", "--soft-noise", "0.1", "--seed", "4"])
    assert res.exit_code == 0, res.output
    assert "this subset vs random" in res.output and "facility-location value" in res.output
    saved = Workspace(root).get_meta("selection")
    assert saved["budget_unit"] == "tokens" and saved["pick"] == "mmr" and saved["strata_column"] == "lang"
    out = tmp_path / "sub.csv"
    res = runner.invoke(app, ["export", "-w", str(root), "--out", str(out), "--include-duplicates"])
    assert res.exit_code == 0, res.output
    man = json.loads(out.with_name("sub.csv.manifest.json").read_text())
    assert man["select"]["mmr_lambda"] == 0.3 and man["export"]["include_duplicates"] is True
    assert man["selection"]["tokens_used"] <= 800
    res = runner.invoke(app, ["select", "-w", str(root), "--budget", "5", "--dedup", "fuzzy"])
    assert res.exit_code == 2 and "dedup" in res.output
    res = runner.invoke(app, ["select", "-w", str(root), "--budget", "5", "--leakage", "drop"])
    assert res.exit_code == 2 and "reference_path" in res.output


def test_reference_errors_name_the_parameter(depth_map, tmp_path):
    ws, data, m, ref = depth_map
    p = SelectParams(budget=5, reference_path=str(tmp_path / "missing.jsonl"))
    with pytest.raises(SieveError, match="reference_path"):
        run_selection(ws, data, p, encoder=_encoder(m))
    with pytest.raises(SieveError, match="reference_text"):
        run_selection(ws, data, dataclasses.replace(p, reference_path=str(ref), reference_text="nope"),
                      encoder=_encoder(m))
