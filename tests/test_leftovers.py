"""A daemon killed mid-build leaves its build running; the next start stops it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from watcher.build import run_build
from watcher.config import Config, JobType
from watcher.leftovers import RUNNING_MARKER, stop_leftover_builds

# A build whose child ignores SIGTERM and writes its pid, run by a process that is
# then killed with SIGKILL, as a daemon would be.
RUNNER = """
import sys
from pathlib import Path
from watcher.build import run_build
from watcher.config import Config, JobType

script = (
    "import os, signal, time\\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
    "if os.fork() == 0:\\n"
    "    open('pids.txt', 'w').write(str(os.getpid()) + '\\\\n')\\n"
    "time.sleep(600)\\n"
)
stubborn = JobType("stubborn", (sys.executable, "-c", script))
root = Path(sys.argv[1])
config = Config(repo=root, node="build1", state_dir=root / "state",
                job_types={"stubborn": stubborn}, kill_grace=0.5)
run_build({"id": "job_LEFT", "type": "stubborn"}, config, {})
"""


def config(tmp_path: Path) -> Config:
    return Config(
        repo=tmp_path, node="build1", state_dir=tmp_path / "state", kill_grace=0.5
    )


def wait_for(path: Path) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def is_running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_build_left_by_a_killed_daemon_is_stopped_at_the_next_start(
    tmp_path: Path,
) -> None:
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, str(tmp_path)])
    workspace = config(tmp_path).workspace_path / "job_LEFT"
    child = int(wait_for(workspace / "source" / "pids.txt"))
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=10)
    assert is_running(child)

    assert stop_leftover_builds(config(tmp_path)) == ["job_LEFT"]

    assert not is_running(child)
    assert not (workspace / RUNNING_MARKER).exists()


def test_a_marker_whose_pid_now_names_another_process_is_left_alone(
    tmp_path: Path,
) -> None:
    workspace = config(tmp_path).workspace_path / "job_OLD"
    workspace.mkdir(parents=True)
    bystander = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        (workspace / RUNNING_MARKER).write_text(
            f'{{"pid": {bystander.pid}, "started": 1.0}}'
        )

        assert stop_leftover_builds(config(tmp_path)) == []

        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_a_build_that_ended_leaves_no_marker(tmp_path: Path) -> None:
    quick = JobType("quick", ("true",))
    cfg = Config(
        repo=tmp_path, node="b", state_dir=tmp_path / "s", job_types={"quick": quick}
    )
    run_build({"id": "job_Q", "type": "quick"}, cfg, {})
    assert not (cfg.workspace_path / "job_Q" / RUNNING_MARKER).exists()
