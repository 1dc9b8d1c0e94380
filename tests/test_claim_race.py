"""Eight processes race to claim the same twenty jobs through the transaction."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.conftest import Fleet, git
from watcher.config import load_config
from watcher.documents import read_snapshot
from watcher.joblist import SubmitJob
from watcher.layout import JOBS_PATH
from watcher.transaction import transact
from watcher.validation import Profile

RACERS = 8
JOBS = 20
CLAIMER = """
import json, random, sys, time
from pathlib import Path
from watcher.config import load_config
from watcher.joblist import ClaimJob
from watcher.transaction import OutcomeStatus, transact

checkout, node, start = sys.argv[1], sys.argv[2], Path(sys.argv[3])
job_ids = sys.argv[4:]
config = load_config(checkout, node)
deadline = time.monotonic() + 60
while not start.exists() and time.monotonic() < deadline:
    time.sleep(0.01)
random.shuffle(job_ids)
claimed, failed = [], []
for job_id in job_ids:
    outcome = transact(config, ClaimJob(job_id, node), offline_ok=False)
    if outcome.status is OutcomeStatus.DONE:
        claimed.append(job_id)
    elif outcome.status is OutcomeStatus.FAILED:
        failed.append(outcome.reason)
print(json.dumps({"node": node, "claimed": claimed, "failed": failed}))
"""


def submit_jobs(fleet: Fleet) -> list[str]:
    config = load_config(str(fleet.clone("submitter")), "submitter")
    requests = [SubmitJob(type="build", branch="main") for _ in range(JOBS)]
    for request in requests:
        assert transact(config, request).is_done
    return [request.job_id for request in requests]


def start_racers(
    fleet: Fleet, job_ids: list[str], start: Path
) -> list[subprocess.Popen[str]]:
    racers = []
    for number in range(RACERS):
        node = f"build{number + 1}"
        checkout = fleet.clone(node)
        racers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    CLAIMER,
                    str(checkout),
                    node,
                    str(start),
                    *job_ids,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        )
    return racers


def test_each_job_is_claimed_by_exactly_one_of_eight_racing_processes(
    fleet: Fleet,
) -> None:
    job_ids = submit_jobs(fleet)
    start = fleet.root / "start"
    racers = start_racers(fleet, job_ids, start)
    start.touch()

    reports = [json.loads(racer.communicate(timeout=600)[0]) for racer in racers]

    assert_every_commit_is_strict_and_linear(fleet)

    claims = Counter(job for report in reports for job in report["claimed"])
    assert sorted(claims) == sorted(job_ids)
    assert set(claims.values()) == {1}
    final = json.loads(fleet.remote_file(JOBS_PATH))["jobs"]
    holders = {job["id"]: job["assigned_to"] for job in final}
    for report in reports:
        for job_id in report["claimed"]:
            assert holders[job_id] == report["node"]
    assert all(job["status"] == "running" for job in final)
    assert all(report["failed"] == [] for report in reports)


def assert_every_commit_is_strict_and_linear(fleet: Fleet) -> None:
    for commit in git("rev-list", "main", cwd=fleet.remote).split():
        snapshot = read_snapshot(fleet.remote, commit, profile=Profile.STRICT)
        assert snapshot.problems == {}, commit
    assert git("rev-list", "--merges", "main", cwd=fleet.remote) == ""
