"""core.manifest: writing a manifest never follows a link planted at its name (issue 15 item 6)."""

from __future__ import annotations


def test_write_manifest_replaces_a_planted_link_instead_of_writing_through_it(tmp_path):
    """Even the CLI's writer never follows a link at the final name: it renames over it."""
    from core.manifest import write_manifest

    (tmp_path / "outside.json").write_text("precious")
    link = tmp_path / "m.manifest.json"
    link.symlink_to(tmp_path / "outside.json")
    write_manifest(link, {"selected_row_ids": [1]})
    assert (tmp_path / "outside.json").read_text() == "precious"
    assert not link.is_symlink() and '"selected_row_ids"' in link.read_text()
