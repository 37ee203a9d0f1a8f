"""core.encoders.cache: a partial or corrupt exported model is never used; builds are atomic."""

from __future__ import annotations

import shutil

import pytest

from core.encoders import cache as C


def test_a_partial_or_corrupt_export_is_never_used(tmp_path, onnx_encoder):
    from core.encoders import onnx as O

    files = [O.MODEL_FILE, O.TOKENIZER_FILE]
    assert C.verify_dir(onnx_encoder.path, files) is not None
    # a copy of the real export with a truncated model file is refused
    broken = tmp_path / "broken"
    shutil.copytree(onnx_encoder.path, broken)
    with open(broken / O.MODEL_FILE, "r+b") as fh:
        fh.truncate(1000)
    assert C.verify_dir(broken, files) is None
    shutil.copytree(onnx_encoder.path, tmp_path / "nometa")
    (tmp_path / "nometa" / C.META_FILE).unlink()  # a crash before meta.json
    assert C.verify_dir(tmp_path / "nometa", files) is None

    # a build that crashes leaves nothing behind, and the next build replaces a broken folder
    final = tmp_path / "cache" / "m"

    def crash(tmp):
        (tmp / "a").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        C.build_atomically(final, ["a"], crash)
    assert not final.exists() and list(final.parent.iterdir()) == []
    final.mkdir()
    (final / "a").write_text("half")  # a folder without meta.json (e.g. copied by hand)
    calls = []

    def good(tmp):
        calls.append(1)
        (tmp / "a").write_text("whole")
        return {"k": 1}

    meta = C.build_atomically(final, ["a"], good)
    assert (final / "a").read_text() == "whole" and meta["k"] == 1
    assert C.build_atomically(final, ["a"], good)["k"] == 1 and len(calls) == 1  # complete: reused
    assert [p.name for p in final.parent.iterdir()] == ["m"]  # no temp folders left
