"""Claim and finish writes on a real bare remote, each one fenced commit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import Fleet
from watcher.build import BuildResult, BuildStatus
from watcher.buildrecords import FinishBuild, StartJob, finish_for
from watcher.config import Config, load_config
from watcher.draft import rebuild_operation
from watcher.joblist import ClaimNext, RequeueJob, SubmitJob
from watcher.transaction import OutcomeStatus, transact

ARTIFACT = {"file": "hello", "size": 3, "sha256": "a" * 64}


def server(fleet: Fleet, node: str) -> Config:
    return load_config(str(fleet.clone(node)), node)


def start(config: Config) -> dict[str, object]:
    claim = ClaimNext(str(config.node), ("make",), lease_seconds=30.0)
    outcome = transact(config, StartJob(claim), offline_ok=False)
    assert outcome.status is OutcomeStatus.DONE, outcome.reason
    return dict(outcome.result)


def result(job_id: str, status: BuildStatus = BuildStatus.COMPLETED) -> BuildResult:
    return BuildResult(
        job_id=job_id,
        status=status,
        reason="exited with status 0",
        started_at=datetime.now(UTC),
        duration=12.34,
        exit_code=0,
        log_path=Path("/nowhere.log"),
        trimmed_log="gcc -o hello hello.c\n",
        source_commit="d" * 40,
    )


def remote_json(fleet: Fleet, path: str) -> dict[str, object]:
    return dict(json.loads(fleet.remote_file(path)))


def test_starting_claims_the_job_and_shows_the_server_building(fleet: Fleet) -> None:
    config = server(fleet, "build1")
    submitted = transact(config, SubmitJob("make", "main"))

    job = start(config)

    assert job["id"] == submitted.result and job["status"] == "running"
    status = remote_json(fleet, "build1/status.json")
    assert status["status"] == "building"
    assert status["current_job"] == job["id"]


def test_finishing_records_the_job_the_log_and_last_build_in_one_commit(
    fleet: Fleet,
) -> None:
    config = server(fleet, "build1")
    transact(config, SubmitJob("make", "main"))
    job = start(config)
    before = len(fleet.remote_log())

    finished = finish_for(result(str(job["id"])), job, "build1")
    finished = FinishBuild(**{**finished.to_json(), "artifacts": [ARTIFACT]})
    outcome = transact(config, finished)

    assert outcome.status is OutcomeStatus.DONE, outcome.reason
    assert len(fleet.remote_log()) == before + 1
    [record] = remote_json(fleet, "coordination/jobs.json")["jobs"]  # type: ignore[misc]
    assert record["status"] == "completed" and record["artifacts"] == [ARTIFACT]
    status = remote_json(fleet, "build1/status.json")
    last_build = status["last_build"]
    assert status["status"] == "success" and status["current_job"] is None
    assert isinstance(last_build, dict)
    assert last_build["status"] == "success"
    assert last_build["artifacts"] == [ARTIFACT]
    assert last_build["commit"] == "d" * 40
    assert record["log"] == last_build["log"]
    assert fleet.remote_file(str(last_build["log"])) == "gcc -o hello hello.c\n"


def test_a_finish_after_the_job_was_requeued_writes_nothing(fleet: Fleet) -> None:
    holder, peer = server(fleet, "build1"), server(fleet, "build2")
    transact(holder, SubmitJob("make", "main"))
    job = start(holder)
    transact(peer, RequeueJob(str(job["id"]), 1, "build1 went silent"))
    before = fleet.remote_log()

    outcome = transact(holder, finish_for(result(str(job["id"])), job, "build1"))

    assert outcome.status is OutcomeStatus.MOOT
    assert "attempt 2" in outcome.reason or "queued" in outcome.reason
    assert fleet.remote_log() == before


def test_the_finish_survives_the_offline_queue_as_json() -> None:
    finished = FinishBuild(
        "job_1",
        "build1",
        2,
        "failed",
        "timed out after 5 s",
        "tail",
        artifacts=(ARTIFACT,),
    )
    payload = json.loads(json.dumps(finished.to_json()))
    assert (
        rebuild_operation("finish-build", "watcher.buildrecords", payload) == finished
    )
    start_job = StartJob(ClaimNext("build1", ("make", "build"), ("gpu",), 2))
    payload = json.loads(json.dumps(start_job.to_json()))
    assert rebuild_operation("start-job", "watcher.buildrecords", payload) == start_job
