"""The built-in `package` job builds a real Debian package with dpkg-buildpackage."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.sourcerepos import build_config_for, debian_package_repo
from watcher.build import BuildStatus, run_build
from watcher.config import Config
from watcher.recipes import runnable_types

pytestmark = pytest.mark.skipif(
    shutil.which("dpkg-buildpackage") is None or shutil.which("dh") is None,
    reason="dpkg-buildpackage and debhelper are not installed (.ci/run installs "
    "dpkg-dev and debhelper)",
)


def test_a_package_job_builds_the_deb_and_records_it(tmp_path: Path) -> None:
    source = debian_package_repo(tmp_path / "watcher-hello")
    config = Config(repo=tmp_path, node="build1", state_dir=tmp_path / "state")
    build_config = build_config_for(source)
    job = {"id": "job_01JPACKAGE", "type": "package", "branch": "main"}

    assert "package" in runnable_types(config, build_config)
    result = run_build(job, config, build_config)

    assert result.status is BuildStatus.COMPLETED, result.trimmed_log
    [deb] = result.artifacts
    assert deb.name == "watcher-hello_1.0_all.deb"
    assert deb.sha256 == hashlib.sha256(deb.path.read_bytes()).hexdigest()
    listing = subprocess.run(
        ["dpkg-deb", "--contents", str(deb.path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "./usr/share/watcher-hello/hello.txt" in listing
    assert "dpkg-buildpackage" in result.trimmed_log
