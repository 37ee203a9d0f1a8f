"""`sieve search` (by a query, and "more like this" by a row) on a small map made with the real
packaged model and generated rows of known topics.
"""

from __future__ import annotations


def test_sieve_search_cli_prints_plain_rows(real_map):
    from tests.fakes import run_sieve

    ws, data, topics = real_map
    p = run_sieve("search", "budget for monthly savings and expenses", "-k", "4", "-w", ws.root, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    lines = p.stdout.strip().splitlines()
    assert lines[0] == "row_id\tsimilarity\tcluster\ttext" and len(lines) == 5
    rows = [ln.split("\t") for ln in lines[1:]]
    assert [topics[int(r[0])] for r in rows].count("personal_finance") >= 3
    sims = [float(r[1]) for r in rows]
    assert sims == sorted(sims, reverse=True)
    # more like this: a row's own vector finds itself first, at similarity 1
    rid = int(rows[0][0])
    p = run_sieve("search", "--row", str(rid), "-k", "3", "-w", ws.root, timeout=300)
    assert p.returncode == 0, p.stderr
    first = p.stdout.strip().splitlines()[1].split("\t")
    assert int(first[0]) == rid and abs(float(first[1]) - 1) < 1e-4
    p = run_sieve("search", "--row", "999999", "-w", ws.root, timeout=300)
    assert p.returncode == 2 and "999999" in p.stderr and len(p.stderr.strip().splitlines()) == 1
