"""The offline queue: operations wait durably while the remote is away, then land
once each, in order, re-decided against the tip of that moment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import Fleet, git
from watcher import outbox
from watcher.config import Config, load_config
from watcher.joblist import CancelJob, SubmitJob
from watcher.layout import JOBS_PATH
from watcher.transaction import OutcomeStatus, flush_outbox, transact


def remote_away(fleet: Fleet) -> Path:
    away = fleet.remote.with_name("remote-away.git")
    fleet.remote.rename(away)
    return away


def remote_back(fleet: Fleet, away: Path) -> None:
    away.rename(fleet.remote)


def job_ids_on_remote(fleet: Fleet) -> list[str]:
    return [job["id"] for job in json.loads(fleet.remote_file(JOBS_PATH))["jobs"]]


def submit(priority: int) -> SubmitJob:
    return SubmitJob(type="build", branch="main", priority=priority)


def offline_config(fleet: Fleet) -> Config:
    return load_config(str(fleet.clone("build1")), "build1")


def test_operations_queue_while_the_remote_is_away_and_land_in_order(
    fleet: Fleet,
) -> None:
    config = offline_config(fleet)
    away = remote_away(fleet)
    requests = [submit(priority) for priority in (3, 1, 2, 5, 4)]

    outcomes = [transact(config, request) for request in requests]

    assert {outcome.status for outcome in outcomes} == {OutcomeStatus.QUEUED}
    assert len(outbox.entries(config)) == 5
    remote_back(fleet, away)
    flushed = flush_outbox(config)
    assert [outcome.status for outcome in flushed] == [OutcomeStatus.DONE] * 5
    assert job_ids_on_remote(fleet) == [request.job_id for request in requests]
    subjects = git("log", "--reverse", "--format=%s", "main", cwd=fleet.remote)
    assert [line.split()[2] for line in subjects.splitlines()[1:]] == [
        request.job_id for request in requests
    ]
    assert outbox.entries(config) == []


def test_a_new_operation_waits_behind_the_queue_and_lands_after_it(
    fleet: Fleet,
) -> None:
    config = offline_config(fleet)
    away = remote_away(fleet)
    first, second, third = submit(1), submit(2), submit(3)
    transact(config, first)
    transact(config, second)
    remote_back(fleet, away)

    outcome = transact(config, third)

    assert outcome.status is OutcomeStatus.DONE
    assert job_ids_on_remote(fleet) == [first.job_id, second.job_id, third.job_id]


def test_a_queued_operation_survives_the_crash_of_its_process(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")
    away = remote_away(fleet)
    script = (
        "import os, signal, sys\n"
        "from watcher.config import load_config\n"
        "from watcher.joblist import SubmitJob\n"
        "from watcher.transaction import transact\n"
        "request = SubmitJob(type='build', branch='main')\n"
        "outcome = transact(load_config(sys.argv[1], 'build1'), request)\n"
        "print(request.job_id, outcome.status.value, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    crashed = subprocess.run(
        [sys.executable, "-c", script, str(checkout)],
        capture_output=True,
        text=True,
        check=False,
    )
    job_id, status = crashed.stdout.split()

    assert crashed.returncode == -9 and status == "queued"
    remote_back(fleet, away)
    flush_outbox(load_config(str(checkout), "build1"))
    assert job_ids_on_remote(fleet) == [job_id]


def test_a_replayed_entry_is_moot_and_recorded_not_applied_twice(
    fleet: Fleet,
) -> None:
    config = offline_config(fleet)
    away = remote_away(fleet)
    request = submit(1)
    transact(config, request)
    entry = outbox.entries(config)[0]
    outbox.enqueue(config, {k: v for k, v in entry.to_json().items() if k != "id"})
    remote_back(fleet, away)

    flushed = flush_outbox(config)

    assert [outcome.status for outcome in flushed] == [
        OutcomeStatus.DONE,
        OutcomeStatus.MOOT,
    ]
    assert job_ids_on_remote(fleet) == [request.job_id]
    failures = (config.state_path / outbox.FAILURE_LOG).read_text().splitlines()
    assert json.loads(failures[0])["status"] == "moot"


def test_an_entry_that_fails_is_logged_and_does_not_block_the_queue(
    fleet: Fleet,
) -> None:
    config = offline_config(fleet)
    away = remote_away(fleet)
    transact(config, CancelJob("job_nobody_knows"))
    later = submit(2)
    transact(config, later)
    remote_back(fleet, away)

    flush_outbox(config)

    assert job_ids_on_remote(fleet) == [later.job_id]
    failure = json.loads((config.state_path / outbox.FAILURE_LOG).read_text())
    assert failure["entry"]["operation"] == "cancel"
    assert "there is no job job_nobody_knows" in failure["reason"]


def test_without_offline_ok_an_unreachable_remote_is_a_failure(
    fleet: Fleet,
) -> None:
    config = offline_config(fleet)
    remote_away(fleet)

    outcome = transact(config, submit(1), offline_ok=False)

    assert outcome.status is OutcomeStatus.FAILED
    assert "cannot be reached" in outcome.reason
    assert outbox.entries(config) == []
