"""The systemd units pass `systemd-analyze verify` and say what the daemon needs."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[1] / "units"
INSTALLED = "/usr/local/bin/build-watcher"
PROGRAM = Path(sys.executable).with_name("build-watcher")


def read_unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="no systemd-analyze"
)
@pytest.mark.parametrize(
    ("unit", "instance"),
    [
        ("build-watcher.service", "build-watcher.service"),
        ("build-watcher@.service", "build-watcher@cloudstack.service"),
    ],
)
def test_systemd_analyze_verify_passes_without_a_warning(
    tmp_path: Path, unit: str, instance: str
) -> None:
    """Verified as shipped, except that ExecStart points at this venv's program:
    verify insists that the program exists, and /usr/local/bin is not ours here."""
    text = (UNITS / unit).read_text().replace(INSTALLED, str(PROGRAM))
    (tmp_path / unit).write_text(text)

    completed = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / instance)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""


@pytest.mark.parametrize("unit", ["build-watcher.service", "build-watcher@.service"])
def test_the_unit_runs_a_watched_notifying_daemon(unit: str) -> None:
    service = read_unit(unit)["Service"]

    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    assert service["WatchdogSec"] == "60"
    assert service["Restart"] == "on-failure"
    assert service["ExecStart"].startswith(INSTALLED + " --config /etc/build-watcher/")
    assert service["ExecStart"].endswith(" watch")
    assert service["User"] == "build-watcher"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "full"
    assert service["PrivateTmp"] == "yes"
    assert service["StateDirectory"].startswith("build-watcher")
