"""The served app is idle when nobody uses it (issue 14 A1).

Streamlit's default file watcher crawls the `.venv` that `make app` puts inside the
repository: about 0.6 of a core with nobody using the app.  The shipped
`.streamlit/config.toml` turns it off.  This test serves the app as `make app` does, opens
the Data page once in Chromium (a session is what starts the watcher), and reads the
server's CPU time from /proc over 10 s.
"""

from __future__ import annotations

import pytest

from bench.idle_cpu import idle_cores

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_idle_server_uses_almost_no_cpu():
    cores = idle_cores(10.0, settle=10.0)
    assert cores < 0.05, f"the idle app server used {cores:.3f} of a core"
