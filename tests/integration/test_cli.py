"""The ``sieve`` command line, as a user runs it: subprocesses, exit codes, files on disk.

The end-to-end test runs ``sieve run`` on the committed sample (sample_data/prompts.csv)
with the real packaged model, then ``sieve reproduce`` from the manifest in a fresh
workspace, and checks that the very same row ids come back.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

from tests.fakes import SAMPLE_CSV, read_any, run_sieve, write_table

SIEVE_COLS = ["sieve_cluster_id", "sieve_cluster_name", "sieve_rank", "sieve_reason"]


def sieve(*args, timeout=600) -> subprocess.CompletedProcess:
    return run_sieve(*args, timeout=timeout)


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in err and "Traceback" not in proc.stdout
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error:"), err
    for n in needles:
        assert n in err, err


# -- end to end on the committed sample (run in the background, see conftest.SieveCliE2E) ---------


def test_run_end_to_end_on_the_sample(sieve_cli_e2e):
    e = sieve_cli_e2e
    proc = e.run
    assert proc is not None and proc.returncode == 0, (proc and proc.stderr[-3000:])
    t = read_any(e.out)
    original = pacsv.read_csv(SAMPLE_CSV).column_names
    assert t.column_names == ["sieve_row_id"] + original + SIEVE_COLS
    assert t.num_rows == e.budget
    ids = t.column("sieve_row_id").to_pylist()
    assert len(set(ids)) == e.budget
    assert set(t.column("sieve_reason").to_pylist()) == {"diverse"}

    man = json.loads(e.manifest.read_text())
    assert man["selected_row_ids"] == sorted(ids) and man["n_selected"] == e.budget
    assert man["select"]["policy"] == "equal" and man["select"]["pick"] == "diverse"
    # the CPU default backend is the int8 ONNX export of the packaged model
    assert man["model"]["id"] == "sentence-transformers/all-MiniLM-L6-v2#onnx-int8" and man["model"]["dim"] == 384
    assert man["model"]["params"]["backend"] == "onnx-int8"
    assert man["dataset"]["n_rows"] == pacsv.read_csv(SAMPLE_CSV).num_rows
    # equal policy: per-cluster budgets differ by at most one unless a group is exhausted
    budgets = [(c["budget"], c["size"]) for c in man["clusters"]]
    assert sum(b for b, _ in budgets) == e.budget
    open_ = [b for b, s in budgets if b < s]
    assert max(b for b, _ in budgets) - min(open_) <= 1
    assert man["cluster"]["n_clusters"] >= 5
    assert f"wrote {e.budget} rows" in proc.stderr


def test_reproduce_in_a_fresh_workspace_gives_identical_rows(sieve_cli_e2e):
    e = sieve_cli_e2e
    assert e.run is not None and e.run.returncode == 0, (e.run and e.run.stderr[-3000:])
    proc = e.reproduce
    assert proc is not None and proc.returncode == 0, (proc and proc.stderr[-3000:])
    assert "reproduced: identical" in proc.stderr
    a, b = read_any(e.out), read_any(e.again)
    assert b.num_rows == e.budget
    assert b.column("sieve_row_id").to_pylist() == a.column("sieve_row_id").to_pylist()
    assert b.column("sieve_rank").to_pylist() == a.column("sieve_rank").to_pylist()
    assert b.column("sieve_cluster_name").to_pylist() == a.column("sieve_cluster_name").to_pylist()
    m1 = json.loads(e.manifest.read_text())
    m2 = json.loads(Path(str(e.again) + ".manifest.json").read_text())
    assert m1["selected_row_ids"] == m2["selected_row_ids"]
    assert m1["selected_ids_sha256"] == m2["selected_ids_sha256"]
    assert m1["dataset"]["fingerprint"] == m2["dataset"]["fingerprint"]
    assert e.ws1 != e.ws2 and (e.ws2 / "sieve.duckdb").is_file()  # a fresh, separate workspace


# -- errors: one clear line, exit code 2 -----------------------------------------------------------


@pytest.mark.parametrize("extra,needles", [
    (["--text", "no_such_column"], ["'no_such_column'"]),
    (["--text", "text", "--budget", "0"], ["budget"]),
    (["--text", "text", "--policy", "bogus"], ["policy", "bogus"]),
    (["--text", "text", "--pick", "nearest"], ["pick", "nearest"]),
    (["--text", "text", "--min", "5", "--max", "2"], ["min_per_cluster", "max_per_cluster"]),
    (["--text", "text", "--override", "3"], ["--override"]),
    (["--template", "{instruction} {nope}"], ["'nope'"]),
    ([], ["--text"]),
])
def test_run_errors_are_one_line_naming_the_problem(extra, needles, tmp_path):
    args = ["run", SAMPLE_CSV, "--out", tmp_path / "o.parquet", "-w", tmp_path / "ws"]
    if "--budget" not in extra:
        args += ["--budget", "10"]
    proc = sieve(*args, *extra)
    assert_one_line_error(proc, *needles)
    assert not (tmp_path / "o.parquet").exists()


def test_other_command_errors(tmp_path):
    assert_one_line_error(sieve("run", tmp_path / "missing.csv", "--text", "t", "--budget", "5", "--out",
                                tmp_path / "o.csv", "-w", tmp_path / "ws"), "missing.csv")
    assert_one_line_error(sieve("run", SAMPLE_CSV, "--text", "text", "--budget", "5", "--out",
                                tmp_path / "o.xlsx", "-w", tmp_path / "ws"), "o.xlsx")
    assert_one_line_error(sieve("reproduce", tmp_path / "nothing.json", "--out", tmp_path / "o.csv",
                                "-w", tmp_path / "ws"), "nothing.json")
    assert_one_line_error(sieve("export", "--out", tmp_path / "o.csv", "-w", tmp_path / "empty_ws"))
    assert_one_line_error(sieve("select", "--budget", "5", "-w", tmp_path / "empty_ws"), "no dataset")


@pytest.mark.parametrize("typed", [
    ["--soft-noise", "0.5"],
    ["--dedup", "exact"],
    ["--budget-unit", "tokens"],
    ["--strata", "source"],
    ["--pick", "facility-global"],
])
def test_an_option_the_ray_engine_cannot_run_is_named_by_its_flag(typed, tmp_path):
    """The engine's refusal names what the user typed (the flag and its value, the engine as
    --engine takes it), not the SelectParams field; it comes before any work."""
    proc = sieve("run", SAMPLE_CSV, "--text", "text", "--budget", "10", "--engine", "ray", "--out", tmp_path / "o",
                 "-w", tmp_path / "ws", *typed)
    flag, value = typed
    assert_one_line_error(proc, f"error: {flag} {value} is not supported by the ray engine yet; "
                                "use the local engine for it")
    assert not (tmp_path / "o").exists() and not (tmp_path / "ws").exists()


# -- step by step -------------------------------------------------------------------------------------


def test_step_by_step_commands(tmp_path):
    from sample_data.generate import generate_rows

    table = generate_rows(160, seed=5, mess=True)
    data = write_table(table, tmp_path / "small.csv")
    ws = tmp_path / "ws"

    p = sieve("ingest", data, "--template", r"{instruction}\n{input}", "-w", ws)
    assert p.returncode == 0, p.stderr
    assert f"{table.num_rows} rows" in p.stderr
    n_empty = int(p.stderr.split(" rows, ")[1].split(" empty")[0])
    assert n_empty >= 1  # the messy sample has a null / empty instruction or two
    assert "(already loaded)" in sieve("ingest", data, "--template", r"{instruction}\n{input}", "-w", ws).stderr

    p = sieve("embed", "-w", ws)
    assert p.returncode == 0, p.stderr
    assert f"{table.num_rows - n_empty} x 384" in p.stderr and "computed" in p.stderr
    p = sieve("embed", "-w", ws)
    assert p.returncode == 0 and "(cached)" in p.stderr

    p = sieve("map", "--min-cluster-size", "6", "-w", ws)
    assert p.returncode == 0, p.stderr
    assert "clusters" in p.stderr

    p = sieve("select", "--budget", "30", "--policy", "proportional", "--pick", "centroid", "--pin", "0,1",
              "-w", ws)
    assert p.returncode == 0, p.stderr
    assert "30 rows selected" in p.stderr

    out = tmp_path / "picked.csv"
    p = sieve("export", "--out", out, "-w", ws)
    assert p.returncode == 0, p.stderr
    t = read_any(out)
    assert t.num_rows == 30
    assert {0, 1} <= set(t.column("sieve_row_id").to_pylist())
    assert set(table.column_names) | set(SIEVE_COLS) | {"sieve_text"} <= set(t.column_names)  # template: text kept
    man = json.loads(Path(str(out) + ".manifest.json").read_text())
    assert man["select"]["pins"] == [0, 1] and man["select"]["budget"] == 30
    assert man["dataset"]["text"] == {"column": None, "template": "{instruction}\n{input}"}
    assert man["selected_row_ids"] == sorted(t.column("sieve_row_id").to_pylist())

    p = sieve("info", "-w", ws)
    assert p.returncode == 0 and "budget 30" in p.stderr

    # reproducing against different data fails fast, naming the mismatch
    changed = tmp_path / "changed.csv"
    shutil.copy(data, changed)
    with open(changed, "a") as fh:
        fh.write('"p-x","extra row","","extra row","history","crowd",0.5,"en"\n')
    p = sieve("reproduce", str(out) + ".manifest.json", "--data", changed, "--out", tmp_path / "r.csv",
              "-w", tmp_path / "ws2")
    assert_one_line_error(p, "fingerprint")
    assert not (tmp_path / "r.csv").exists()


# -- cluster edits (sieve curate / --edits) ------------------------------------------------------------


def test_cluster_edits_replay_in_reproduce_and_bad_edits_are_one_line(tmp_path):
    from sample_data.generate import generate_rows

    data = write_table(generate_rows(240, seed=11, mess=False), tmp_path / "small.csv")
    edits = tmp_path / "edits.json"
    edits.write_text(json.dumps([{"op": "split", "cluster": 0, "k": 2, "seed": 1},
                                 {"op": "rename", "cluster": 0, "name": "[bold]zero[/bold]"}]))
    out, ws1, ws2 = tmp_path / "o.parquet", tmp_path / "ws1", tmp_path / "ws2"
    p = sieve("run", data, "--text", "text", "--budget", "40", "--min-cluster-size", "8", "--edits", edits,
              "--out", out, "-w", ws1)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "[bold]zero[/bold]" in p.stderr  # a typed name is printed as typed, never as rich markup
    man = json.loads(Path(str(out) + ".manifest.json").read_text())
    assert man["curate"]["edits"] == [{"op": "split", "cluster": 0, "k": 2, "seed": 1},
                                      {"op": "rename", "cluster": 0, "name": "[bold]zero[/bold]"}]
    names = {c["id"]: c["name"] for c in man["clusters"]}
    assert names[0] == "[bold]zero[/bold]"
    t = read_any(out)
    assert set(zip(t.column("sieve_cluster_id").to_pylist(), t.column("sieve_cluster_name").to_pylist())) \
        <= set(names.items())
    p = sieve("reproduce", str(out) + ".manifest.json", "--out", tmp_path / "again.parquet", "-w", ws2)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "reproduced: identical" in p.stderr
    again = read_any(tmp_path / "again.parquet")
    assert again.column("sieve_row_id").to_pylist() == t.column("sieve_row_id").to_pylist()
    assert again.column("sieve_cluster_id").to_pylist() == t.column("sieve_cluster_id").to_pylist()
    assert again.column("sieve_cluster_name").to_pylist() == t.column("sieve_cluster_name").to_pylist()

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"op": "rename", "cluster": 0, "name": "a"}, {"op": "merge", "clusters": [0, 999]}]))
    assert_one_line_error(sieve("curate", bad, "-w", ws1), "bad.json", "edit 2 (merge)", "cluster 999 does not exist")
    assert_one_line_error(sieve("curate", "-w", ws1), "--clear")
    p = sieve("curate", "--clear", "-w", ws1)
    assert p.returncode == 0 and "0 edit(s)" in p.stderr
    good = tmp_path / "good.json"
    good.write_text(json.dumps([{"op": "merge", "clusters": [0, 1]}]))
    p = sieve("curate", good, "-w", ws1)
    assert p.returncode == 0 and "1 edit(s)" in p.stderr, p.stderr
    p = sieve("select", "--budget", "20", "-w", ws1)
    assert p.returncode == 0, p.stderr


# -- options: declared once, defaults from the Params dataclasses ---------------------------------


def test_selection_options_are_declared_once_for_select_and_run():
    import typer

    from core.cli import app
    from core.cli.options import DEPTH_OPTS, SELECT_OPTS

    cmd = typer.main.get_command(app)
    sel = {p.name: p for p in cmd.commands["select"].params}
    run = {p.name: p for p in cmd.commands["run"].params}
    names = [*SELECT_OPTS, *DEPTH_OPTS]
    assert len(names) == 27 and set(names) <= set(sel) and set(names) <= set(run)
    for name in names:
        a, b = sel[name], run[name]
        assert (a.opts, a.default, a.help, a.required, a.multiple) == (b.opts, b.default, b.help, b.required,
                                                                      b.multiple), name
    assert sel["budget"].opts == ["--budget", "-b"] and sel["budget"].required


def test_cli_defaults_are_the_params_defaults():
    from types import SimpleNamespace

    from core.cli.options import DEPTH_OPTS, EMBED, MAP, SELECT_OPTS
    from core.cli.parse import map_params, select_params
    from core.stages.cluster import ClusterParams
    from core.stages.embed import EmbedParams
    from core.engines.local import MapParams
    from core.stages.project import ProjectParams
    from core.selection import DEFAULT_PICK, DEFAULT_POLICY, SelectParams

    o = SimpleNamespace(**{opt.name: opt.default for opt in [*SELECT_OPTS.values(), *DEPTH_OPTS.values()]})
    o.budget = 10
    # the CLI's own defaults: the harness winner (sqrt + facility); --leakage warn means off without --reference
    assert select_params(o) == SelectParams(budget=10, pick=DEFAULT_PICK, policy=DEFAULT_POLICY)
    o = SimpleNamespace(**{opt.name: opt.default for opt in [*EMBED.values(), *MAP.values()]})
    assert map_params(o, o.seed) == MapParams(EmbedParams().resolved(), ProjectParams(), ClusterParams())
