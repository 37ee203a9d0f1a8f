"""The default policy and pick (issue 16): `sieve select` without --policy/--pick uses the
combination that trained best on the quality harness (sqrt + facility, docs/SELECTION.md),
records it in the manifest, and `sieve reproduce` rebuilds the same rows."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from core.cli import app
from core.cli.parse import soft_noise
from core.selection import DEFAULT_PICK, DEFAULT_POLICY, DEFAULT_SOFT_NOISE
from core.store.workspace import SieveError
from tests.fixtures.make_manifests import write_vectors_jsonl


def sieve(*args) -> str:
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, (args, res.output, res.exception)
    return res.output


def test_cli_select_defaults_to_sqrt_and_facility(tmp_path):
    assert (DEFAULT_POLICY, DEFAULT_PICK) == ("sqrt", "facility")
    data = write_vectors_jsonl(tmp_path / "topics_vectors.jsonl")
    ws = tmp_path / "ws"
    sieve("ingest", data, "--text", "text", "--vectors", "vec", "-w", ws)
    sieve("map", "-w", ws)
    sieve("select", "--budget", "60", "-w", ws)
    out, man_path = tmp_path / "sub.parquet", tmp_path / "sub.manifest.json"
    sieve("export", "--out", out, "--manifest", man_path, "-w", ws)
    man = json.loads(man_path.read_text())
    assert (man["select"]["policy"], man["select"]["pick"]) == ("sqrt", "facility")
    assert man["select"]["soft_noise_threshold"] == DEFAULT_SOFT_NOISE == 0.0  # every unclustered row joins
    t = pq.read_table(out)
    assert t.num_rows == 60 and set(t.column("sieve_reason").to_pylist()) == {"facility"}
    # sqrt: budgets follow the square root of cluster size (largest-remainder rounding), so a
    # cluster 4x larger gets about 2x the rows, not 4x (proportional) nor the same (equal)
    sizes = {c["id"]: c["size"] for c in man["clusters"]}
    budgets = {c["id"]: c["budget"] for c in man["clusters"]}
    w = {c: np.sqrt(s) for c, s in sizes.items()}
    ideal = {c: 60 * w[c] / sum(w.values()) for c in w}
    assert all(abs(budgets[c] - ideal[c]) < 1 for c in w), (budgets, ideal)
    assert len(set(budgets.values())) > 1  # not equal: the clusters differ in size
    # and the manifest rebuilds the same rows in a fresh workspace
    again = tmp_path / "again.parquet"
    sieve("reproduce", man_path, "--data", data, "--out", again, "--manifest", tmp_path / "again.json",
          "-w", tmp_path / "ws2")
    assert sorted(pq.read_table(again).column("sieve_row_id").to_pylist()) == man["selected_row_ids"]


def test_soft_noise_default_is_the_recipe_on_local_and_off_on_ray():
    def o(**kw):
        return SimpleNamespace(**{"soft_noise": None, "no_soft_noise": False, **kw})

    assert soft_noise(o()) == DEFAULT_SOFT_NOISE  # sieve select (no --engine)
    assert soft_noise(o(engine="local")) == DEFAULT_SOFT_NOISE
    assert soft_noise(o(engine="ray")) is None  # Ray maps have no soft membership
    assert soft_noise(o(engine="ray", soft_noise=0.3)) == 0.3  # asked for: the engine refuses it by name
    assert soft_noise(o(soft_noise=0.25)) == 0.25
    assert soft_noise(o(no_soft_noise=True)) is None
    with pytest.raises(SieveError, match="--no-soft-noise"):
        soft_noise(o(no_soft_noise=True, soft_noise=0.1))


def test_soft_noise_default_is_off_when_noise_has_its_own_rule():
    """--noise exclude or a noise budget says what the unclustered rows get: the recipe's soft
    noise does not move them into clusters first (a --soft-noise given still applies)."""
    def o(**kw):
        return SimpleNamespace(**{"soft_noise": None, "no_soft_noise": False, **kw})

    assert soft_noise(o(noise="include")) == DEFAULT_SOFT_NOISE
    assert soft_noise(o(noise="exclude")) is None
    assert soft_noise(o(noise="5")) is None
    assert soft_noise(o(noise="exclude", soft_noise=0.2)) == 0.2


def test_cli_no_soft_noise_is_recorded_as_off(tmp_path):
    data = write_vectors_jsonl(tmp_path / "topics_vectors.jsonl")
    ws = tmp_path / "ws"
    sieve("ingest", data, "--text", "text", "--vectors", "vec", "-w", ws)
    sieve("map", "-w", ws)
    sieve("select", "--budget", "20", "--no-soft-noise", "-w", ws)
    man_path = tmp_path / "sub.manifest.json"
    sieve("export", "--out", tmp_path / "sub.parquet", "--manifest", man_path, "-w", ws)
    assert json.loads(man_path.read_text())["select"]["soft_noise_threshold"] is None


def test_cli_cluster_choice_coverage_is_recorded_and_reproduced(tmp_path):
    data = write_vectors_jsonl(tmp_path / "topics_vectors.jsonl")
    ws = tmp_path / "ws"
    sieve("ingest", data, "--text", "text", "--vectors", "vec", "-w", ws)
    sieve("map", "-w", ws)
    sieve("select", "--budget", "2", "--cluster-choice", "coverage", "-w", ws)
    out, man_path = tmp_path / "sub.parquet", tmp_path / "sub.manifest.json"
    sieve("export", "--out", out, "--manifest", man_path, "-w", ws)
    man = json.loads(man_path.read_text())
    assert man["select"]["cluster_choice"] == "coverage" and len(man["selected_row_ids"]) == 2
    again = tmp_path / "again.parquet"
    sieve("reproduce", man_path, "--data", data, "--out", again, "--manifest", tmp_path / "again.json",
          "-w", tmp_path / "ws2")
    assert sorted(pq.read_table(again).column("sieve_row_id").to_pylist()) == man["selected_row_ids"]
