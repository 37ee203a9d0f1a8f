"""The served app is idle when nobody uses it (issue 14 A1).

Streamlit's default file watcher crawls the `.venv` that `make app` puts inside the
repository: about 0.6 of a core with nobody using the app.  The shipped
`.streamlit/config.toml` turns it off.  This test serves the app as `make app` does, opens
the Data page once in Chromium (a session is what starts the watcher), and reads the
server's CPU time from /proc over 10 s.  The measurement runs in its own process: the
Playwright sync API cannot run inside the event loop that pytest-playwright's fixtures
leave behind in this one.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.browser.helpers import REPO

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_idle_server_uses_almost_no_cpu():
    code = "from bench.idle_cpu import idle_cores; print(idle_cores(10.0, settle=10.0))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr
    cores = float(proc.stdout.strip().splitlines()[-1])
    assert cores < 0.05, f"the idle app server used {cores:.3f} of a core"
