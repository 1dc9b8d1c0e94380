"""The dashboard page in a real headless Chromium: it renders and shows staleness."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tests.test_dashboard import fleet_view
from watcher.fleetpage import render_page
from watcher.liveness import Liveness

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian package `chromium`; .ci/run installs it)",
)
OFFLINE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
JOBS = {
    "jobs": [
        {"id": "job_01", "type": "build", "status": "running", "assigned_to": "build2"},
        {"id": "job_02", "type": "package", "status": "queued", "priority": 3},
    ]
}


@pytest.fixture
def page(tmp_path: Path) -> Path:
    view = fleet_view(
        {
            "build1": Liveness.ALIVE,
            "build2": Liveness.STALE,
            "build3": Liveness.UNKNOWN,
        },
        {"coordination/jobs.json": JOBS},
    )
    target = tmp_path / "index.html"
    target.write_text(render_page(view), encoding="utf-8")
    return target


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        *OFFLINE_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=True
    )


def test_chromium_renders_the_page_with_the_stale_server_marked(
    page: Path, tmp_path: Path
) -> None:
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout

    assert "<title>Build fleet: degraded</title>" in dom
    assert 'data-server="build2" data-liveness="stale"' in dom
    assert '<span class="badge stale">stale</span>' in dom
    assert 'id="overall">degraded</span>' in dom
    assert "job_02" in dom


def test_chromium_draws_a_screenshot_of_the_page(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"

    chromium(tmp_path, "--window-size=1280,900", f"--screenshot={shot}", page.as_uri())

    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 900)
    assert len(data) > 20_000  # a blank page compresses to a few kilobytes
