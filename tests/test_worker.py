"""The worker on real remotes with real builds, driven tick by tick."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from tests.conftest import Fleet, git
from tests.sourcerepos import c_program_repo, point_fleet_at
from watcher import remoterefs
from watcher.config import Config, JobType, load_config
from watcher.documents import Snapshot, dump_document
from watcher.events import Event, EventKind
from watcher.joblist import CancelJob, RequeueJob, SubmitJob
from watcher.judgement import SavedView
from watcher.liveness import Liveness, PeerView
from watcher.timestamps import now_utc
from watcher.transaction import read_shared_snapshot, tracking_ref, transact
from watcher.worker import Worker

MAKE = JobType("make", ("make", "-C", "{workspace}", "install", "DESTDIR={artifacts}"))
SLEEP = JobType("sleep", (sys.executable, "-c", "import time; time.sleep(120)"))


@pytest.fixture
def fleet_with_source(fleet: Fleet, tmp_path: Path) -> Fleet:
    """The fleet's build configuration points at a small local C project."""
    point_fleet_at(fleet, c_program_repo(tmp_path / "hello"))
    return fleet


def server(fleet: Fleet, node: str, **settings: Any) -> Config:
    config = load_config(str(fleet.clone(node)), node)
    defaults: dict[str, Any] = {
        "job_types": {"make": MAKE, "sleep": SLEEP},
        "kill_grace": 0.5,
        "stale_after": 30.0,
        "lease_margin": 5.0,
    }
    return dataclasses.replace(config, **{**defaults, **settings})


def shared(config: Config) -> Callable[[], Snapshot]:
    def snapshot() -> Snapshot:
        remoterefs.fetch_branch(
            config.repo, config.remote, config.branch, tracking_ref(config)
        )
        return read_shared_snapshot(config)

    return snapshot


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


_WORKERS: list[Worker] = []


def worker_for(config: Config, clock: Clock | None = None) -> Worker:
    def claim(operation: Any) -> Any:
        return transact(config, operation, offline_ok=False)

    worker = Worker(
        lambda: config,
        shared(config),
        lambda operation: transact(config, operation),
        claim,
        clock or Clock(),
    )
    _WORKERS.append(worker)
    return worker


@pytest.fixture(autouse=True)
def stop_workers() -> Iterator[None]:
    """Builds left running by a test (a worker that "died") are stopped after it."""
    yield
    while _WORKERS:
        _WORKERS.pop().shut_down()


def submit(config: Config, job_type: str = "make", **fields: Any) -> str:
    outcome = transact(config, SubmitJob(job_type, "main", **fields))
    return str(outcome.result)


def jobs(fleet: Fleet) -> dict[str, dict[str, Any]]:
    document = json.loads(fleet.remote_file("coordination/jobs.json"))
    return {job["id"]: job for job in document["jobs"]}


def until(condition: Callable[[], bool], worker: Worker | None = None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if worker is not None:
            worker.report_results()
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met within 30 s")


def test_submitted_jobs_run_once_each_and_record_artifacts(
    fleet_with_source: Fleet,
) -> None:
    config = server(fleet_with_source, "build1", concurrency=2)
    worker = worker_for(config)
    submitted = [submit(config) for _ in range(3)]

    worker.tick()
    assert len(worker.runs) == 2
    until(lambda: not worker.runs, worker)

    recorded = jobs(fleet_with_source)
    assert [recorded[job_id]["status"] for job_id in submitted] == ["completed"] * 3
    [artifact] = recorded[submitted[0]]["artifacts"]
    assert artifact["file"] == "hello" and len(artifact["sha256"]) == 64
    status = json.loads(fleet_with_source.remote_file("build1/status.json"))
    assert status["status"] == "success" and status["current_job"] is None
    assert status["last_build"]["id"] == submitted[2]
    assert "gcc -O2" in fleet_with_source.remote_file(status["last_build"]["log"])


def test_only_job_types_this_server_can_run_are_claimed(
    fleet_with_source: Fleet,
) -> None:
    config = server(fleet_with_source, "build1")
    test_job = submit(config, "test")
    labelled = submit(config, labels=("gpu",))

    worker_for(config).tick()

    recorded = jobs(fleet_with_source)
    assert recorded[test_job]["status"] == "queued"
    assert recorded[labelled]["status"] == "queued"


def test_a_requeued_job_stops_the_build_and_nothing_is_reported(
    fleet_with_source: Fleet,
) -> None:
    holder, peer = (
        server(fleet_with_source, "build1"),
        server(fleet_with_source, "build2"),
    )
    worker = worker_for(holder)
    job_id = submit(holder, "sleep")
    worker.tick()
    [first] = worker.runs.values()

    transact(peer, RequeueJob(job_id, 1, "build1 went silent"))
    before = fleet_with_source.remote_log()
    worker.watch_runs()
    until(lambda: worker.runs.get(job_id) is not first, worker)

    assert first.cancel.is_set()
    record = jobs(fleet_with_source)[job_id]
    assert record["completed_at"] is None  # attempt 1 reported nothing
    assert record["attempt"] == 2  # the free slot took the requeued job again
    assert len(fleet_with_source.remote_log()) == len(before) + 1


def test_a_cancel_request_stops_the_build_and_records_cancelled(
    fleet_with_source: Fleet,
) -> None:
    config = server(fleet_with_source, "build1")
    worker = worker_for(config)
    job_id = submit(config, "sleep")
    worker.tick()

    transact(config, CancelJob(job_id))
    worker.watch_runs()
    until(lambda: not worker.runs, worker)

    assert jobs(fleet_with_source)[job_id]["status"] == "cancelled"
    status = json.loads(fleet_with_source.remote_file("build1/status.json"))
    assert status["last_build"]["status"] == "cancelled"
    assert status["status"] == "idle"


def test_a_job_left_running_by_a_previous_life_is_requeued_at_start(
    fleet_with_source: Fleet,
) -> None:
    config = server(fleet_with_source, "build1")
    job_id = submit(config, "sleep")
    worker_for(config).tick()  # claims and starts; this worker then "dies"

    reborn = worker_for(config)
    reborn.return_strays()

    record = jobs(fleet_with_source)[job_id]
    assert record["status"] == "queued" and record["attempt"] == 2
    assert "restarted" in record["previous_attempts"][0]["reason"]
    status = json.loads(fleet_with_source.remote_file("build1/status.json"))
    assert status["status"] == "idle" and status["current_job"] is None


def stale_event(server_id: str, seconds_silent: float) -> Event:
    record = {"server": server_id, "seconds_silent": seconds_silent}
    heartbeat = f"{server_id}/heartbeat.json"
    return Event(EventKind.SERVER_STALE, "e1", None, heartbeat, server_id, record, None)


def test_a_silent_holders_job_is_requeued_after_lease_and_margin(
    fleet_with_source: Fleet,
) -> None:
    holder, peer = (
        server(fleet_with_source, "build1"),
        server(fleet_with_source, "build2"),
    )
    job_id = submit(holder, "sleep")
    worker_for(holder).tick()
    clock = Clock()
    observer = worker_for(peer, clock)
    observer.recover_orphans()  # the claim is seen, its holder not yet stale
    clock.now += 31.0

    observer.on_server_stale(stale_event("build1", 31.0))
    assert jobs(fleet_with_source)[job_id]["status"] == "running"
    clock.now += 4.0
    observer.recover_orphans()

    record_after = jobs(fleet_with_source)[job_id]
    assert record_after["status"] == "queued" and record_after["attempt"] == 2
    assert "build1 silent for 35 s" in record_after["previous_attempts"][0]["reason"]


def test_a_claim_made_by_a_server_long_silent_is_given_its_lease(
    fleet_with_source: Fleet,
) -> None:
    holder, peer = (
        server(fleet_with_source, "build1"),
        server(fleet_with_source, "build2"),
    )
    clock = Clock()
    observer = worker_for(peer, clock)
    observer.on_server_stale(stale_event("build1", 600.0))
    job_id = submit(holder, "sleep")
    worker_for(holder).tick()  # build1, back from a restart, claims at once

    observer.recover_orphans()
    clock.now += 20.0
    observer.recover_orphans()
    assert jobs(fleet_with_source)[job_id]["status"] == "running"

    clock.now += 15.0
    observer.recover_orphans()
    assert jobs(fleet_with_source)[job_id]["status"] == "queued"


def test_a_job_fails_once_its_attempts_are_spent(fleet_with_source: Fleet) -> None:
    config = server(fleet_with_source, "build1", max_attempts=1)
    job_id = submit(config, "sleep")
    worker_for(config).tick()

    worker_for(config).return_strays()

    record = jobs(fleet_with_source)[job_id]
    assert record["status"] == "failed"
    assert "gave up after 1 attempts" in record["reason"]


def test_a_job_with_a_hostile_branch_is_failed_without_running(
    fleet_with_source: Fleet, tmp_path: Path
) -> None:
    config = server(fleet_with_source, "build1")
    worker = worker_for(config)
    job_id = submit(config)
    seeded = fleet_with_source.checkouts["admin"]
    git("pull", "--quiet", "origin", "main", cwd=seeded)
    document = json.loads((seeded / "coordination/jobs.json").read_text())
    document["jobs"][0]["branch"] = f"--upload-pack=touch {tmp_path / 'owned'}"
    (seeded / "coordination/jobs.json").write_bytes(dump_document(document))
    git("commit", "--quiet", "-am", "A hostile job", cwd=seeded)
    git("push", "--quiet", "origin", "main", cwd=seeded)

    worker.tick()
    until(lambda: not worker.runs, worker)

    record = jobs(fleet_with_source)[job_id]
    assert record["status"] == "failed"
    assert "starts with '-'" in record["reason"]
    assert not (tmp_path / "owned").exists()


def test_a_holder_judged_stale_before_a_restart_stays_suspect(
    fleet_with_source: Fleet,
) -> None:
    holder, peer = (
        server(fleet_with_source, "build1"),
        server(fleet_with_source, "build2"),
    )
    job_id = submit(holder, "sleep")
    worker_for(holder).tick()
    silent_since = now_utc() - timedelta(seconds=40)
    saved = SavedView(
        "build2",
        now_utc(),
        30.0,
        {
            "build1": PeerView(
                "build1", Liveness.STALE, None, silent_since, 40.0, None, None
            )
        },
    )

    clock = Clock()
    restarted = worker_for(peer, clock)
    restarted.restore_silences(saved)
    restarted.recover_orphans()
    assert jobs(fleet_with_source)[job_id]["status"] == "running"
    clock.now += 35.0  # the restarted peer has watched the claim for its lease
    restarted.recover_orphans()

    record = jobs(fleet_with_source)[job_id]
    assert record["status"] == "queued" and record["attempt"] == 2


def refuse_pushes(fleet: Fleet, refusing: bool) -> None:
    """The remote's pre-receive hook refuses every push while `refusing`."""
    hook = fleet.remote / "hooks" / "pre-receive"
    if refusing:
        hook.write_text("#!/bin/sh\necho no writes now >&2\nexit 1\n")
        hook.chmod(0o755)
    else:
        hook.unlink()


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    found: list[str] = []
    handle = logger.add(lambda m: found.append(m.record["message"]), level="WARNING")
    yield found
    logger.remove(handle)


def finish_refused_once(fleet: Fleet, config: Config) -> tuple[Worker, str]:
    """A worker whose build ended while the remote refused every write."""
    worker = worker_for(config)
    job_id = submit(config)
    worker.tick()
    refuse_pushes(fleet, True)
    until(lambda: not worker.runs, worker)
    return worker, job_id


def test_a_refused_finish_is_kept_and_retried_until_it_lands(
    fleet_with_source: Fleet, warnings: list[str]
) -> None:
    config = server(fleet_with_source, "build1", transaction_timeout=0.3)
    worker, job_id = finish_refused_once(fleet_with_source, config)

    assert jobs(fleet_with_source)[job_id]["status"] == "running"
    assert any("finish not recorded yet" in message for message in warnings)
    worker.tick()  # still refused: neither dropped nor given back
    assert list((config.state_path / "finishes").iterdir())
    refuse_pushes(fleet_with_source, False)
    worker.tick()

    record = jobs(fleet_with_source)[job_id]
    assert record["status"] == "completed" and record["attempt"] == 1
    assert not list((config.state_path / "finishes").iterdir())


def test_a_restart_reports_a_noted_result_instead_of_running_the_job_again(
    fleet_with_source: Fleet, warnings: list[str]
) -> None:
    config = server(fleet_with_source, "build1", transaction_timeout=0.3)
    finish_refused_once(fleet_with_source, config)  # then this life "dies"
    refuse_pushes(fleet_with_source, False)

    reborn = worker_for(config)
    reborn.restore_unreported()
    reborn.tick()

    [record] = jobs(fleet_with_source).values()
    assert record["status"] == "completed" and record["attempt"] == 1
    assert not record.get("previous_attempts") and not reborn.runs


def test_a_job_lost_by_a_previous_life_is_given_back_with_a_warning(
    fleet_with_source: Fleet, warnings: list[str]
) -> None:
    config = server(fleet_with_source, "build1")
    job_id = submit(config, "sleep")
    worker_for(config).tick()  # claims and starts; this worker then "dies"

    worker_for(config).return_strays()

    [warning] = [
        message for message in warnings if job_id in message or "lost" in message
    ]
    assert "given back" in warning and "build-watcher jobs" in warning
