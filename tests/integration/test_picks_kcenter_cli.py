"""pick='kcenter-greedy-cosine' through the CLI: `sieve select --pick`, export, and reproduce from
the manifest (the method itself: unit/selection/test_picks_kcenter.py).
"""

from __future__ import annotations

import json
import shutil

from core.manifest import read_manifest
from core.engines.local import reproduce
from core.store.workspace import Workspace
from tests.fakes import TopicEncoder


PICK = "kcenter-greedy-cosine"


def test_cli_select_with_the_pick_then_export_reproduces(sieve_fake_map, tmp_path):
    from typer.testing import CliRunner

    from core.cli import app

    root = tmp_path / "ws"
    shutil.copytree(sieve_fake_map.ws.root, root)
    runner = CliRunner()
    help_text = runner.invoke(app, ["select", "--help"]).output
    assert PICK.split("-")[0] in help_text  # the --pick help lists the registry
    res = runner.invoke(app, ["select", "-w", str(root), "--budget", "30", "--pick", PICK, "--seed", "5"])
    assert res.exit_code == 0, res.output
    assert Workspace(root).get_meta("selection")["pick"] == PICK
    out = tmp_path / "sub.csv"
    res = runner.invoke(app, ["export", "-w", str(root), "--out", str(out)])
    assert res.exit_code == 0, res.output
    man_path = out.with_name("sub.csv.manifest.json")
    man = json.loads(man_path.read_text())
    assert man["select"]["pick"] == PICK and len(man["selected_row_ids"]) == 30
    enc = TopicEncoder(dict(sieve_fake_map.encoder.text_topics))
    _, again, _, params = reproduce(Workspace(tmp_path / "fresh"), read_manifest(man_path), encoder=enc)
    assert params.pick == PICK and sorted(again.row_ids.tolist()) == sorted(man["selected_row_ids"])
