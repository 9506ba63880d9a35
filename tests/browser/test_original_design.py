"""The original design's own browser test (``../shared/original-design.md``, "E2E Tests").

It is kept as it is written there, in TypeScript (``tests/e2e/original-design.spec.ts``),
and run by ``@playwright/test`` from npm against a real server on a port, in Debian's
Chromium. Logging in (a one-time login link, in the run's global setup) is the only
addition. ``scripts/bootstrap --test`` installs it (``npm ci`` in ``tests/e2e``); this test
installs nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import ServerFactory

E2E = Path(__file__).resolve().parents[1] / "e2e"


def run_e2e(base_url: str, login_url: str) -> subprocess.CompletedProcess[str]:
    """``npx playwright test`` in ``tests/e2e`` against ``base_url``."""
    npx = shutil.which("npx")
    assert npx is not None, "the E2E test needs Node.js 20+ and npm: run scripts/bootstrap --test"
    installed = E2E / "node_modules" / "@playwright" / "test"
    assert installed.is_dir(), f"{installed} is missing: run scripts/bootstrap --test (npm ci)"
    env = {
        **os.environ,
        "FEATURE_PLANNER_E2E_BASE_URL": base_url,
        "FEATURE_PLANNER_E2E_LOGIN_URL": login_url,
        "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
        "CI": "1",
    }
    return subprocess.run(
        [npx, "--no-install", "playwright", "test"],
        cwd=E2E,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_original_design_e2e_test_passes(make_server: ServerFactory) -> None:
    # Slow enough that "Generating suggestions..." is on screen for a few seconds.
    server = make_server(scripted_chunks=60, scripted_chunk_size=16, scripted_interval_ms=50)
    login_url = server.auth_backend.login_links(server.url)["alice"]

    result = run_e2e(server.url, login_url)

    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, output
    assert "1 passed" in result.stdout, output
    # It ran against this server: the run it made is alice's.
    jobs = server.http.get("/api/feature-planner/jobs", headers=server.auth()).json()
    inputs = [job["input"] for job in jobs["data"]["jobs"]]
    assert {"pageOrComponent": "Collections", "featureType": "enhancement"}.items() <= (
        inputs[0].items()
    ), inputs
