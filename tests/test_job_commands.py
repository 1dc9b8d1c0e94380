"""`submit`, `cancel` and `jobs` as a person runs them, and the job operations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Fleet, git
from watcher.config import Config, load_config
from watcher.errors import UsageError
from watcher.joblist import (
    ClaimJob,
    ClaimNext,
    FinishJob,
    RequeueJob,
    SubmitJob,
    find_job,
    list_jobs,
)
from watcher.layout import JOBS_PATH
from watcher.serverstatus import StatusUpdate
from watcher.transaction import OutcomeStatus, read_shared_snapshot, transact


def build_watcher(checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcher", "--repo", str(checkout), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def remote_jobs(fleet: Fleet) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = json.loads(fleet.remote_file(JOBS_PATH))["jobs"]
    return jobs


def test_submit_prints_the_new_job_id_and_queues_it(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")

    done = build_watcher(
        checkout, "submit", "--type", "build", "--branch", "main", "--priority", "2",
        "--commit", "d8e22ab0af78", "--label", "gpu", "--description", "nightly",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    [job] = remote_jobs(fleet)
    assert job["id"] == job_id and job_id.startswith("job_") and len(job_id) == 30
    assert job["status"] == "queued" and job["priority"] == 2
    assert job["labels"] == ["gpu"] and job["submitted_by"] == "build1"
    assert job["created_at"].endswith("Z")


def test_submit_as_json_and_a_bad_branch_is_a_usage_error(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")

    good = build_watcher(
        checkout, "submit", "--type", "build", "--branch", "main", "--format", "json"
    )
    bad = build_watcher(checkout, "submit", "--type", "build", "--branch", "x; touch y")

    assert json.loads(good.stdout)["status"] == "done"
    assert bad.returncode == 2 and "not a valid git branch name" in bad.stderr
    assert len(remote_jobs(fleet)) == 1


def test_submit_without_a_server_id_refuses(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")
    (checkout / ".build_server_id").unlink()

    done = build_watcher(checkout, "submit", "--type", "build", "--branch", "main")

    assert done.returncode == 2 and "no server id" in done.stderr


def test_submit_from_a_subdirectory_finds_the_server_id_at_the_top(
    fleet: Fleet,
) -> None:
    checkout = fleet.clone("build1")
    command = [sys.executable, "-m", "watcher", "submit", "--type", "build"]

    done = subprocess.run(
        [*command, "--branch", "main"],
        cwd=checkout / "shared",
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    [job] = remote_jobs(fleet)
    assert job["submitted_by"] == "build1"


def test_cancel_ends_a_queued_job_and_fails_for_an_unknown_one(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")
    job_id = build_watcher(checkout, "submit", "--type", "build", "--branch", "main")
    job_id_text = job_id.stdout.strip()

    cancelled = build_watcher(checkout, "cancel", job_id_text)
    unknown = build_watcher(checkout, "cancel", "job_nope")

    assert cancelled.returncode == 0 and f"cancel {job_id_text}" in cancelled.stdout
    assert remote_jobs(fleet)[0]["status"] == "cancelled"
    assert unknown.returncode == 1 and "there is no job job_nope" in unknown.stderr


def test_submit_prints_only_the_id_while_the_remote_is_away(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")
    away = fleet.remote.with_name("away.git")
    fleet.remote.rename(away)
    try:
        done = build_watcher(checkout, "submit", "--type", "build", "--branch", "main")
    finally:
        away.rename(fleet.remote)

    assert done.returncode == 0
    assert done.stdout.strip().startswith("job_") and len(done.stdout.split()) == 1
    assert "queued:" in done.stderr


def test_submit_warns_of_a_job_no_server_says_it_can_run(fleet: Fleet) -> None:
    peer = load_config(str(fleet.clone("build2")), "build2")
    offer = {"job_types": ["build"], "labels": ["x86_64"]}
    transact(peer, StatusUpdate("build2", "idle", capabilities=offer))
    checkout = fleet.clone("build1")

    runnable = build_watcher(
        checkout, "submit", "--type", "build", "--branch", "main", "--label", "x86_64"
    )
    unknown = build_watcher(checkout, "submit", "--type", "nosuch", "--branch", "main")

    assert runnable.returncode == 0 and "warning" not in runnable.stderr
    assert unknown.returncode == 0 and unknown.stdout.startswith("job_")
    assert "no server lists job type 'nosuch'" in unknown.stderr


def test_cancel_refuses_what_cannot_be_a_job_id(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")

    done = build_watcher(checkout, "cancel", "[job_1 (waiting)]")

    assert done.returncode == 2 and "is not a job id" in done.stderr


def test_cancelling_a_running_job_asks_its_holder(fleet: Fleet) -> None:
    config = load_config(str(fleet.clone("build1")), "build1")
    request = SubmitJob(type="build", branch="main")
    transact(config, request)
    transact(config, ClaimJob(request.job_id, "build2"))

    done = build_watcher(config.repo, "cancel", request.job_id)

    [job] = remote_jobs(fleet)
    assert done.returncode == 0 and job["status"] == "running"
    assert job["cancel_requested"]["by"] == "build1"


def test_jobs_lists_state_holder_attempt_and_age(fleet: Fleet) -> None:
    config = load_config(str(fleet.clone("build1")), "build1")
    first, second = (SubmitJob(type="build", branch="main") for _ in range(2))
    transact(config, first)
    transact(config, second)
    transact(config, ClaimJob(second.job_id, "build1"))

    text = build_watcher(config.repo, "jobs")
    running = build_watcher(
        config.repo, "jobs", "--status", "running", "--format", "json"
    )

    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[0].split() == [
        "ID",
        "TYPE",
        "STATUS",
        "PRI",
        "HOLDER",
        "TRY",
        "AGE",
        "BRANCH",
    ]
    assert any(second.job_id in line and "build1" in line for line in lines)
    rows = json.loads(running.stdout)["jobs"]
    assert [row["id"] for row in rows] == [second.job_id]
    assert rows[0]["attempt"] == 1 and rows[0]["age_seconds"] >= 0


def test_jobs_reads_a_legacy_repository(corpus_repo: Path) -> None:
    done = build_watcher(corpus_repo, "jobs", "--format", "json")

    assert done.returncode == 0, done.stderr
    assert {job["id"] for job in json.loads(done.stdout)["jobs"]} >= {"job_1761781030"}


def test_jobs_says_the_queue_is_broken_instead_of_showing_it_empty(
    fleet: Fleet,
) -> None:
    markers = '{\n<<<<<<< HEAD\n  "jobs": []\n=======\n>>>>>>> x\n}\n'
    fleet.push_by_hand(JOBS_PATH, markers)
    checkout = fleet.clone("build1")

    text = build_watcher(checkout, "jobs")
    as_json = build_watcher(checkout, "jobs", "--format", "json")

    assert text.returncode == 1 and f"{JOBS_PATH}:2:" in text.stderr
    assert "fix it and commit" in text.stderr
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["invalid"]


def claimer(fleet: Fleet, node: str) -> Config:
    return load_config(str(fleet.clone(node)), node)


def test_claim_next_takes_the_most_urgent_then_oldest_job_it_can_run(
    fleet: Fleet,
) -> None:
    config = claimer(fleet, "build1")
    requests = [
        SubmitJob(type="build", branch="main", priority=3),
        SubmitJob(type="package", branch="main", priority=1),
        SubmitJob(type="build", branch="main", priority=2),
        SubmitJob(type="build", branch="main", priority=2),
        SubmitJob(type="build", branch="main", priority=1, labels=("gpu",)),
    ]
    for request in requests:
        transact(config, request)

    claim = ClaimNext("build1", types=("build",), slots=2)
    taken = [transact(config, claim) for _ in range(3)]

    assert [o.result["id"] for o in taken[:2]] == [
        requests[2].job_id,
        requests[3].job_id,
    ]
    assert taken[2].status is OutcomeStatus.MOOT
    assert "already runs 2" in taken[2].reason


def test_a_finish_from_a_superseded_attempt_is_fenced_off(fleet: Fleet) -> None:
    config = claimer(fleet, "build1")
    request = SubmitJob(type="build", branch="main")
    transact(config, request)
    transact(config, ClaimJob(request.job_id, "build1"))
    transact(config, RequeueJob(request.job_id, 1, "heartbeat silent"))
    transact(config, ClaimJob(request.job_id, "build2"))

    late = transact(config, FinishJob(request.job_id, "build1", 1, "completed"))

    assert late.status is OutcomeStatus.MOOT
    [job] = remote_jobs(fleet)
    assert job["status"] == "running" and job["assigned_to"] == "build2"
    assert job["attempt"] == 2 and job["previous_attempts"][0]["holder"] == "build1"


def test_finish_records_the_result_and_keeps_unknown_fields(fleet: Fleet) -> None:
    config = claimer(fleet, "build1")
    request = SubmitJob(type="build", branch="main")
    transact(config, request)
    person = fleet.clone("person")
    git("pull", "-q", cwd=person)
    document = json.loads((person / JOBS_PATH).read_text())
    document["jobs"][0]["ticket"] = "OPS-12"
    (person / JOBS_PATH).write_text(json.dumps(document, indent=2) + "\n")
    git("commit", "-qam", "note the ticket", cwd=person)
    git("push", "-q", "origin", "main", cwd=person)
    transact(config, ClaimJob(request.job_id, "build1"))
    artifact = {"file": "app.deb", "size": 3, "sha256": "a" * 64}

    transact(
        config, FinishJob(request.job_id, "build1", 1, "completed", None, (artifact,))
    )

    job = find_job(read_shared_snapshot(config), request.job_id)
    assert job is not None and job["status"] == "completed"
    assert job["ticket"] == "OPS-12" and job["artifacts"] == [artifact]
    assert "lease" not in job and job["completed_at"].endswith("Z")


def test_requeue_after_the_last_attempt_fails_the_job(fleet: Fleet) -> None:
    config = claimer(fleet, "build1")
    request = SubmitJob(type="build", branch="main")
    transact(config, request)
    for attempt in (1, 2):
        transact(config, ClaimJob(request.job_id, "build1"))
        transact(config, RequeueJob(request.job_id, attempt, "lost", max_attempts=2))

    [job] = list_jobs(read_shared_snapshot(config))
    assert job["status"] == "failed" and job["reason"].startswith("gave up after 2")


def test_a_job_request_is_checked_before_it_is_queued() -> None:
    with pytest.raises(UsageError, match="priority 0"):
        SubmitJob(type="build", branch="main", priority=0)
    with pytest.raises(UsageError, match="commit"):
        SubmitJob(type="build", branch="main", commit="not-hex")
    with pytest.raises(UsageError, match="branch"):
        SubmitJob(type="build", branch="--upload-pack=evil")
