"""bench/name_quality.py: the name-quality bench (issue 14 A6) refuses a missing data file in one
line, and its score counts label words by stem.
"""

from __future__ import annotations

import numpy as np
import pytest


def test_name_quality_bench_without_the_data_says_so(tmp_path, capsys):
    from bench import name_quality

    with pytest.raises(SystemExit) as exc:
        name_quality.main(["--data", str(tmp_path / "banking77.parquet"), "--cache", str(tmp_path / "c")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "banking77.parquet not found" in err and "Traceback" not in err
    assert not (tmp_path / "c").exists()  # nothing written


def test_name_quality_score_counts_label_words_by_stem():
    from bench.name_quality import score

    labels = np.array([0, 0, 1, 1, -1])
    true = np.array(["card_arrival", "card_arrival", "top_up_failed", "top_up_failed", "x"])
    s = score({0: "arrived / delivery", 1: "fee / the", -1: "unclustered"}, labels, true)
    assert s["clusters"] == 2 and s["label_word"] == 0.5 and s["stop_word"] == 0.5
