"""core.explore_files: upload names made safe, uploads kept inside their folder and pruned."""

from __future__ import annotations

import pytest

from core import explore_files as exf


@pytest.mark.parametrize("raw,safe", [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\evil.CSV", "evil.csv"),
    ("my data (1).CSV", "my_data_1.csv"),
    ("", "upload"),
    ("....", "upload"),
    (".hidden.parquet", "hidden.parquet"),
    ("a/b/ok.jsonl", "ok.jsonl"),
    ("x" * 300 + ".csv", "x" * 96 + ".csv"),
    ("résumé;rm -rf.tsv", "r_sum_rm_-rf.tsv"),
    ("\x00.csv", "upload.csv"),  # issue 15 item 10: NUL and separators in an upload's name
    ("a\x00b.csv", "a_b.csv"),
    ("x/\x00/..\\\x1b[31m.JSONL", "31m.jsonl"),
    ("data.c\x00sv", "data.csv"),
])
def test_safe_filename(raw, safe):
    out = exf.safe_filename(raw)
    assert out == safe
    assert "/" not in out and "\\" not in out and not out.startswith(".")


def test_save_upload_stays_in_uploads(tmp_path):
    p = exf.save_upload(tmp_path, "../../../evil name.csv", b"a,b\n1,2\n")
    assert p.parent == tmp_path / "uploads"
    assert p.name.endswith("-evil_name.csv") and p.read_bytes() == b"a,b\n1,2\n"
    assert exf.save_upload(tmp_path, "../../../evil name.csv", b"a,b\n1,2\n") == p  # idempotent


def test_uploads_are_pruned_oldest_first_keeping_the_loaded_one(tmp_path, monkeypatch):
    """Issue 15 item 12: uploads no longer accumulate without limit."""
    import os

    monkeypatch.setenv("SIEVE_UPLOADS_KEEP", "3")
    paths = []
    for i in range(6):
        paths.append(exf.save_upload(tmp_path, f"f{i}.csv", f"text\n{i}\n".encode(), keep=[paths[0]] if paths else ()))
        os.utime(paths[-1], (1000 + i, 1000 + i))  # a strict age order
    left = sorted(p.name for p in (tmp_path / "uploads").iterdir())
    assert len(left) == 3 and paths[0].exists() and paths[-1].exists(), left  # the kept one survives
    monkeypatch.setenv("SIEVE_UPLOADS_MAX_MB", "0")
    p = exf.save_upload(tmp_path, "big.csv", b"text\nbig\n")
    assert [q.name for q in (tmp_path / "uploads").iterdir()] == [p.name]  # the newest is always kept
