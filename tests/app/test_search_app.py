"""The Map page's search by meaning (rings, selects and pins the rows found) on a small map
made with the real packaged model and generated rows of known topics.
"""

from __future__ import annotations

import json


def test_map_page_search_by_meaning_rings_selects_and_pins(real_map, monkeypatch):
    from pages import state as S
    from pages import map_tools as T
    from tests.app_fixtures import chart, no_errors, open_page, metric_value

    ws, data, topics = real_map
    monkeypatch.setenv("SIEVE_WORKSPACE", str(ws.root))
    at = open_page(S.PAGE_MAP, timeout=180)
    no_errors(at)
    before = json.loads(chart(at).proto.spec)
    at.text_input(key=T.W_SEM_QUERY).input("chords and scales to practise on the guitar")
    at.number_input(key=T.W_SEM_K).set_value(5)
    at.button(key=T.W_SEM_GO).click().run()
    no_errors(at)
    assert metric_value(at, "Rows found") == "5"
    table = at.dataframe[-1].value
    ids = [int(r) for r in table["row id"]]
    assert [topics[r] for r in ids].count("music_theory") >= 4
    assert list(table["similarity"]) == sorted(table["similarity"], reverse=True)
    after = json.loads(chart(at).proto.spec)  # the results are ringed on the map
    assert len(after["data"]) == len(before["data"]) + 1
    assert after["data"][-1]["name"] == "search matches"
    ringed = {int(data.row_ids[p]) for p in at.session_state[S.K_FIG]["traces"][-1]}
    assert ringed == set(ids)
    at.button(key=T.W_SEM_SELECT).click().run()
    assert metric_value(at, "Selected rows") == "5"
    at.button(key=T.W_SEM_PIN).click().run()
    no_errors(at)
    assert metric_value(at, "Pinned rows") == "5" and at.session_state[S.K_PINS] == set(ids)
    # more like this: a row's own vector finds that row first
    at.number_input(key=T.W_SEM_ROW).set_value(ids[2])
    at.button(key=T.W_SEM_LIKE).click().run()
    no_errors(at)
    assert int(at.dataframe[-1].value["row id"][0]) == ids[2]
    at.number_input(key=T.W_SEM_ROW).set_value(10**6)
    at.button(key=T.W_SEM_LIKE).click().run()
    assert not at.exception and any("not on the map" in e.value for e in at.error)
