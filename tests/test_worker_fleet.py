"""Two real daemons (`build-watcher watch` processes) on one bare remote build jobs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import Fleet, git
from tests.sourcerepos import c_program_repo, point_fleet_at
from watcher.config import load_config
from watcher.joblist import SubmitJob
from watcher.transaction import transact

pytestmark = pytest.mark.slow

CONFIG = """
poll_interval = 0.3
heartbeat_interval = 0.5
stale_after = 2.0
lease_margin = 0.5
kill_grace = 0.5

[job_types.make]
command = ["make", "-C", "{workspace}", "install", "DESTDIR={artifacts}"]

[job_types.slowmake]
command = ["make", "-C", "{workspace}", "slow", "install", "DESTDIR={artifacts}"]
"""


class Daemons:
    """`build-watcher watch` processes, one per server, each logging to a file."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, node: str) -> subprocess.Popen[bytes]:
        checkout = self.fleet.checkouts.get(node) or self.fleet.clone(node)
        config = self.fleet.root / f"{node}.toml"
        config.write_text(CONFIG)
        with (self.fleet.root / f"{node}.log").open("ab") as log:
            command = [sys.executable, "-m", "watcher", "--repo", str(checkout)]
            self.processes[node] = subprocess.Popen(
                [*command, "--config", str(config), "watch"], stdout=log, stderr=log
            )
        return self.processes[node]

    def check_running(self) -> None:
        """Fail at once, with its log, when a daemon ended instead of waiting on."""
        for node, process in self.processes.items():
            if process.poll() is not None and process.returncode != -signal.SIGKILL:
                raise AssertionError(
                    f"{node} exited {process.returncode}:\n{self.log(node)}"
                )

    def log(self, node: str) -> str:
        return (self.fleet.root / f"{node}.log").read_text(errors="replace")

    def stop_all(self) -> dict[str, int]:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        return {node: p.wait(timeout=60) for node, p in self.processes.items()}


@pytest.fixture
def daemons(fleet: Fleet, tmp_path: Path) -> Iterator[Daemons]:
    point_fleet_at(fleet, c_program_repo(tmp_path / "hello"))
    running = Daemons(fleet)
    yield running
    running.stop_all()


def submit(fleet: Fleet, job_type: str) -> str:
    checkout = fleet.checkouts.get("admin") or fleet.clone("admin")
    outcome = transact(load_config(str(checkout), "admin"), SubmitJob(job_type, "main"))
    assert outcome.is_done, outcome.reason
    return str(outcome.result)


def jobs(fleet: Fleet) -> dict[str, dict[str, Any]]:
    document = json.loads(fleet.remote_file("coordination/jobs.json"))
    return {job["id"]: job for job in document["jobs"]}


def eventually(
    predicate: Callable[[], Any],
    what: str,
    timeout: float = 60.0,
    daemons: Daemons | None = None,
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemons is not None:
            daemons.check_running()
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def finishes(fleet: Fleet, job: str) -> list[str]:
    """The commits that recorded an end of `job` (their summaries name the server)."""
    summaries = git("log", "--format=%s", "main", cwd=fleet.remote).splitlines()
    return [line for line in summaries if line.endswith(f"completed {job}")]


def test_jobs_submitted_to_two_daemons_each_run_once(
    fleet: Fleet, daemons: Daemons
) -> None:
    daemons.start("build1")
    daemons.start("build2")
    submitted = [submit(fleet, "make") for _ in range(4)]

    def all_done() -> bool:
        recorded = jobs(fleet)
        return all(recorded[job]["status"] == "completed" for job in submitted)

    eventually(all_done, "every job completed", daemons=daemons)

    recorded = jobs(fleet)
    for job in submitted:
        assert recorded[job]["attempt"] == 1
        assert recorded[job]["artifacts"][0]["file"] == "hello"
        assert len(finishes(fleet, job)) == 1
    holders = {recorded[job]["assigned_to"] for job in submitted}
    assert holders <= {"build1", "build2"}
    assert daemons.stop_all() == {"build1": 0, "build2": 0}


def test_a_killed_daemons_job_is_requeued_and_completed_by_the_other(
    fleet: Fleet, daemons: Daemons
) -> None:
    first = daemons.start("build1")
    job = submit(fleet, "slowmake")
    claimed = lambda: jobs(fleet)[job]["status"] == "running"  # noqa: E731
    eventually(claimed, "build1 claims the job", daemons=daemons)
    daemons.start("build2")
    eventually(lambda: "daemon ready" in daemons.log("build2"), "build2 is ready")

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)

    completed = lambda: jobs(fleet)[job]["status"] == "completed"  # noqa: E731
    eventually(completed, "the job completes", daemons=daemons)
    record = jobs(fleet)[job]
    assert record["assigned_to"] == "build2"
    assert record["attempt"] == 2
    [abandoned] = record["previous_attempts"]
    assert abandoned["holder"] == "build1"
    assert "build1 silent" in abandoned["reason"]
    assert finishes(fleet, job) == [f"build2: completed {job}"]
    wait_for_orphaned_build(job)


def builds_of(job: str) -> list[psutil.Process]:
    """The processes of `job`'s build that still run."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("BUILD_WATCHER_JOB_ID") == job:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return [p for p in found if p.status() != psutil.STATUS_ZOMBIE]


def wait_for_orphaned_build(job: str) -> None:
    """The killed daemon's build has no parent left to stop it; it ends by itself."""

    def builds_left() -> list[psutil.Process]:
        return builds_of(job)

    eventually(lambda: not builds_left(), "the orphaned build ends", timeout=30)


def test_a_restart_after_kill_warns_and_gives_the_lost_build_back(
    fleet: Fleet, daemons: Daemons
) -> None:
    first = daemons.start("build1")
    job = submit(fleet, "slowmake")
    claimed = lambda: jobs(fleet)[job]["status"] == "running"  # noqa: E731
    eventually(claimed, "build1 claims the job", daemons=daemons)

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    daemons.start("build1")

    requeued = lambda: jobs(fleet)[job].get("attempt", 1) >= 2  # noqa: E731
    eventually(requeued, "the lost build is given back", daemons=daemons)
    eventually(lambda: "lost when build1 stopped" in daemons.log("build1"), "warned")
    log = daemons.log("build1")
    assert "stopped uncleanly" in log
    assert f"the build of job {job} (attempt 1) was lost" in log
    wait_for_orphaned_build(job)


def test_a_build_that_ended_while_its_daemon_was_down_is_reported_not_rerun(
    fleet: Fleet, daemons: Daemons
) -> None:
    first = daemons.start("build1")
    job = submit(fleet, "slowmake")
    claimed = lambda: jobs(fleet)[job]["status"] == "running"  # noqa: E731
    eventually(claimed, "build1 claims the job", daemons=daemons)
    eventually(lambda: builds_of(job), "the build runs", daemons=daemons)

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    wait_for_orphaned_build(job)
    daemons.start("build1")

    completed = lambda: jobs(fleet)[job]["status"] == "completed"  # noqa: E731
    eventually(completed, "the build is reported", daemons=daemons)
    record = jobs(fleet)[job]
    assert record["attempt"] == 1 and not record.get("previous_attempts")
    assert finishes(fleet, job) == [f"build1: completed {job}"]
    assert "while the daemon was interrupted" in daemons.log("build1")
