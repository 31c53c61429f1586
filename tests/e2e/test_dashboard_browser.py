"""Headless Chromium opens the dashboard behind admin credentials: queued and failed jobs show.

The API runs as a real uvicorn process on the test Redis; the jobs are put in the RQ queues
directly (no worker runs, so the queued job stays queued). Screenshots land in
tests/artifacts/ (CI keeps them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis

from clipper.settings import Settings
from tests.api.test_ops_api import ADMIN, SIG, make_failed_job, make_queued_job, make_settings
from tests.fixtures.app import settings_env
from tests.fixtures.services import free_port

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
#: Virtual time Chromium grants the page's scripts to fetch and render the job lists.
VIRTUAL_TIME_BUDGET_MS = 5000
CHROMIUM_TIMEOUT_SECONDS = 45


@pytest.fixture
def api_url(tmp_path: Path, redis_url: str) -> Iterator[tuple[str, Settings]]:
    """`uvicorn api.app:create_app` on a free port; yields (base URL, settings)."""
    settings = make_settings(tmp_path, redis_url)
    port = free_port()
    env = os.environ | settings_env(settings) | {"PYTHONPATH": str(ROOT)}
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"API did not start: {(tmp_path / 'api.log').read_text()}")
            time.sleep(0.1)
        yield base, settings
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def chromium(profile: Path, url: str, *action: str) -> str:
    """Run headless Chromium once (`--dump-dom` or `--screenshot=…`) and return its stdout."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium is not installed: scripts/install-system-deps.sh --test"
    done = subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
         "--window-size=1280,900", f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
         *action, url],
        capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_dashboard_shows_queued_and_failed_jobs(
    api_url: tuple[str, Settings], redis_url: str, tmp_path: Path
) -> None:
    base, _ = api_url
    conn = Redis.from_url(redis_url)
    make_queued_job(conn, "clp_browser_queued")  # queue "interactive"
    make_failed_job(conn, "clp_browser_failed")  # queue "default", failed in a real worker

    # No credentials, no dashboard: pages and static files alike.
    for path in ("/dashboard/", "/dashboard/static/js/jquery-3.5.1.min.js"):
        anonymous = httpx.get(base + path)
        assert anonymous.status_code == 401
        assert "Basic" in anonymous.headers["www-authenticate"]

    # Chromium sends URL credentials as HTTP Basic after the 401 challenge.
    authed = base.replace("http://", f"http://{ADMIN[0]}:{ADMIN[1]}@") + "/dashboard"
    profile = tmp_path / "chromium-profile"
    queued_dom = chromium(profile, f"{authed}/0/view/jobs/interactive/queued/8/asc/1", "--dump-dom")
    failed_dom = chromium(profile, f"{authed}/0/view/jobs/default/failed/8/asc/1", "--dump-dom")

    # The job rows are rendered by the page's JavaScript from the JSON endpoints.
    assert 'class="job_id"' in queued_dom
    assert "clp_browser_queued" in queued_dom
    assert "clp_browser_failed" in failed_dom
    assert "EngineError" in failed_dom  # the classified reason, from the stored traceback
    assert "Server returned 403 Forbidden" in failed_dom  # FFmpeg's text survives…
    assert SIG not in failed_dom  # …without the link's signature
    assert "[REDACTED]" in failed_dom

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shots = {
        ARTIFACTS / "dashboard-queues.png": f"{authed}/",
        ARTIFACTS / "dashboard-failed.png": f"{authed}/0/view/jobs/default/failed/8/asc/1",
    }
    for shot, url in shots.items():
        shot.unlink(missing_ok=True)
        chromium(profile, url, f"--screenshot={shot}")
        assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
