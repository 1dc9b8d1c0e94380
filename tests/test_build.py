"""Real builds through watcher.build: a C program, huge output, stubborn processes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

import watcher.build
from tests.conftest import git
from tests.sourcerepos import build_config_for, c_program_repo, commit_files
from watcher.build import BuildResult, BuildStatus, run_build, trim_log
from watcher.config import Config, JobType

MAKE = JobType("make", ("make", "-C", "{workspace}", "install", "DESTDIR={artifacts}"))
SPEW = JobType(
    "spew",
    (
        sys.executable,
        "-c",
        "import sys\n"
        "sys.stdout.buffer.write((b'y' * 99 + b'\\n') * 500_000)\n"
        "print('the last line', flush=True)",
    ),
)
# A build whose child ignores SIGTERM and forks a grandchild that ignores it too;
# every pid goes to pids.txt in the workspace once all are running.
STUBBORN_SCRIPT = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.fork() == 0:
    if os.fork() == 0:
        with open("pids.txt", "a") as handle:
            handle.write(f"{os.getppid()} {os.getpid()}\\n")
    time.sleep(600)
    sys.exit(0)
if sys.argv[1] == "leave":
    sys.exit(0)
time.sleep(600)
"""


def stubborn(mode: str) -> JobType:
    return JobType("stubborn", (sys.executable, "-c", STUBBORN_SCRIPT, mode))


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return c_program_repo(tmp_path / "hello")


def config(tmp_path: Path, *types: JobType) -> Config:
    return Config(
        repo=tmp_path,
        node="build1",
        state_dir=tmp_path / "state",
        kill_grace=0.5,
        job_types={job_type.name: job_type for job_type in types},
    )


def job(job_type: str, **fields: Any) -> dict[str, Any]:
    return {"id": "job_01JTEST", "type": job_type, "status": "running", **fields}


def test_a_make_build_compiles_and_records_its_artifact(
    tmp_path: Path, source: Path
) -> None:
    commit = git("rev-parse", "HEAD", cwd=source).strip()
    result = run_build(
        job("make", branch="main", commit=commit),
        config(tmp_path, MAKE),
        build_config_for(source),
    )

    assert result.status is BuildStatus.COMPLETED, result.trimmed_log
    assert result.source_commit == commit
    [artifact] = result.artifacts
    binary = artifact.path.read_bytes()
    assert artifact.to_json() == {
        "file": "hello",
        "size": len(binary),
        "sha256": hashlib.sha256(binary).hexdigest(),
    }
    ran = subprocess.run(
        [str(artifact.path)], capture_output=True, text=True, check=True
    )
    assert ran.stdout == "hello from a build-watcher build\n"
    assert "gcc -O2 -o hello hello.c" in result.trimmed_log


def test_the_build_checks_out_the_commit_asked_for_not_the_tip(
    tmp_path: Path, source: Path
) -> None:
    first = git("rev-parse", "HEAD", cwd=source).strip()
    commit_files(source, {"hello.c": "this does not compile\n"}, "Break the build")

    pinned = run_build(
        job("make", branch="main", commit=first[:10]),
        config(tmp_path, MAKE),
        build_config_for(source),
    )
    tip = run_build(
        job("make", branch="main"), config(tmp_path, MAKE), build_config_for(source)
    )

    assert pinned.status is BuildStatus.COMPLETED, pinned.trimmed_log
    assert pinned.source_commit == first
    assert tip.status is BuildStatus.FAILED
    assert tip.reason == "exited with status 2"
    assert tip.artifacts == ()


def test_a_commit_missing_from_the_repository_fails_the_fetch(
    tmp_path: Path, source: Path
) -> None:
    result = run_build(
        job("make", branch="main", commit="0" * 40),
        config(tmp_path, MAKE),
        build_config_for(source),
    )
    assert result.status is BuildStatus.FAILED
    assert "fetching the source failed" in result.reason


@pytest.mark.parametrize(
    "branch", ["x; touch {marker}", "--upload-pack=touch {marker}"]
)
def test_a_hostile_branch_is_refused_and_nothing_runs(
    tmp_path: Path, source: Path, branch: str
) -> None:
    marker = tmp_path / "owned"
    touch = JobType("make", ("touch", str(marker)))
    hostile = job("make", branch=branch.format(marker=marker))

    result = run_build(hostile, config(tmp_path, touch), build_config_for(source))

    assert result.status is BuildStatus.FAILED
    assert "branch" in result.reason
    assert "nothing was run" in result.trimmed_log
    assert result.log_path is None
    assert not marker.exists()
    assert not (tmp_path / "state" / "workspaces").exists()


def test_a_repository_url_that_runs_a_command_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "owned"
    build_config = {"cloudstack": {"repository": f"ext::touch {marker}"}}
    result = run_build(job("make", branch="main"), config(tmp_path, MAKE), build_config)
    assert result.status is BuildStatus.FAILED
    assert "remote helper" in result.reason
    assert not marker.exists()


def test_a_build_printing_fifty_megabytes_keeps_the_tail(tmp_path: Path) -> None:
    result = run_build(job("spew"), config(tmp_path, SPEW), {})

    assert result.status is BuildStatus.COMPLETED
    assert result.log_path is not None and result.log_path.stat().st_size > 50_000_000
    header, _, rest = result.trimmed_log.partition("\n")
    assert "bytes cut" in header and str(result.log_path) in header
    assert len(rest.encode()) <= 64 * 1024
    assert rest.endswith(
        "the last line\n[build-watcher] completed: exited with status 0\n"
    )
    assert rest.startswith("y" * 99 + "\n")


def test_a_short_log_is_kept_whole(tmp_path: Path) -> None:
    log = tmp_path / "short.log"
    log.write_bytes(b"one\ntwo\n")
    assert trim_log(log) == "one\ntwo\n"


def read_pids(workspace: Path) -> list[int]:
    pids_file = workspace / "pids.txt"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if pids_file.exists() and pids_file.read_text().endswith("\n"):
            return [int(pid) for pid in pids_file.read_text().split()]
        time.sleep(0.02)
    raise AssertionError("the stubborn build never wrote its pids")


def alive(pids: list[int]) -> list[int]:
    survivors = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                survivors.append(pid)
        except psutil.NoSuchProcess:
            pass
    return survivors


@pytest.fixture
def background() -> Iterator[list[threading.Thread]]:
    threads: list[threading.Thread] = []
    yield threads
    for thread in threads:
        thread.join(timeout=30)


def start_build(
    threads: list[threading.Thread], *args: Any, cancel: threading.Event
) -> list[BuildResult]:
    results: list[BuildResult] = []
    thread = threading.Thread(
        target=lambda: results.append(run_build(*args, cancel=cancel))
    )
    thread.start()
    threads.append(thread)
    return results


def test_cancelling_stops_a_child_that_ignores_sigterm_and_its_grandchild(
    tmp_path: Path, background: list[threading.Thread]
) -> None:
    cfg, cancel = config(tmp_path, stubborn("stay")), threading.Event()
    results = start_build(background, job("stubborn"), cfg, {}, cancel=cancel)
    pids = read_pids(cfg.workspace_path / "job_01JTEST" / "source")

    cancel.set()
    background[0].join(timeout=30)

    [result] = results
    assert result.status is BuildStatus.CANCELLED
    assert result.reason == "cancelled while running"
    assert alive(pids) == []


def test_a_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    cfg = config(tmp_path, stubborn("stay"))
    result = run_build(job("stubborn", timeout=1), cfg, {})
    assert result.status is BuildStatus.TIMED_OUT
    assert result.reason == "timed out after 1 s"
    assert alive(read_pids(cfg.workspace_path / "job_01JTEST" / "source")) == []


def test_processes_left_behind_by_a_finished_build_are_stopped(tmp_path: Path) -> None:
    cfg = config(tmp_path, stubborn("leave"))
    result = run_build(job("stubborn"), cfg, {})
    assert result.status is BuildStatus.COMPLETED
    assert alive(read_pids(cfg.workspace_path / "job_01JTEST" / "source")) == []


def test_a_missing_program_fails_the_build_with_the_reason(tmp_path: Path) -> None:
    missing = JobType("make", ("no-such-program-here",))
    result = run_build(job("make"), config(tmp_path, missing), {})
    assert result.status is BuildStatus.FAILED
    assert "cannot run `no-such-program-here`" in result.reason


class JumpingClock(datetime):
    """A wall clock that goes back an hour and a half after its first reading."""

    readings = 0

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        cls.readings += 1
        jump = timedelta(0) if cls.readings == 1 else timedelta(seconds=-5400)
        return datetime.now(tz) + jump


def test_a_wall_clock_jumping_back_mid_build_leaves_a_true_duration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pause = JobType("pause", (sys.executable, "-c", "import time; time.sleep(0.2)"))
    monkeypatch.setattr(watcher.build, "datetime", JumpingClock)

    result = run_build(job("pause"), config(tmp_path, pause), {})

    assert result.status is BuildStatus.COMPLETED
    assert 0.2 <= result.duration < 30
