"""Long texts through the CLI: `sieve ingest` reports the texts over the model's limit, and a
`sieve run --long-text chunk` export reproduces (real packaged model).
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.csv as pacsv
from typer.testing import CliRunner

from tests.builders import WORDS, long_pair as _long_pair


def test_cli_reports_long_texts_and_reproduces_chunk(tmp_path):
    from core.cli import app

    a, b = _long_pair()
    rows = [a, b] + [f"short prompt number {i} about {w}" for i, w in enumerate(WORDS[:18])]
    data = tmp_path / "in.csv"
    pacsv.write_csv(pa.table({"text": rows}), data)
    runner = CliRunner()
    res = runner.invoke(app, ["ingest", str(data), "--text", "text", "-w", str(tmp_path / "ws")])
    assert res.exit_code == 0, res.output
    assert "2 of 20 texts exceed the model's limit of 256 tokens" in res.output.replace("\n", " ")
    res = runner.invoke(app, ["run", str(data), "--text", "text", "--budget", "3", "--out", str(tmp_path / "o.csv"),
                              "--long-text", "chunk", "--backend", "torch", "-w", str(tmp_path / "ws")])
    assert res.exit_code == 0, res.output
    man = json.loads((tmp_path / "o.csv.manifest.json").read_text())
    assert man["model"]["params"]["long_text"] == "chunk"
    assert man["model"]["long_texts"]["n_over_limit"] == 2
    res = runner.invoke(app, ["reproduce", str(tmp_path / "o.csv.manifest.json"), "--out", str(tmp_path / "r.csv"),
                              "-w", str(tmp_path / "ws2")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "r.csv.manifest.json").read_text())["selected_row_ids"] == man["selected_row_ids"]
    res = runner.invoke(app, ["embed", "--long-text", "chunks", "-w", str(tmp_path / "ws")])
    assert res.exit_code == 2 and "long_text" in res.output
