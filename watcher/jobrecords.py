"""Job records as `coordination/jobs.json` holds them: read-only queries.

Plain functions of a snapshot's documents (or any mapping of path to document),
for the commands and the daemon. They accept legacy records: a job without
`attempt` is on its first try, a job without `priority` has the default one, and
an entry that is not an object is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from watcher.documents import Snapshot
from watcher.ids import id_time
from watcher.layout import JOBS_PATH
from watcher.timestamps import now_utc, parse_timestamp

STATUSES = ("queued", "running", "completed", "failed", "cancelled")
FINISHED = frozenset({"completed", "failed", "cancelled"})
DEFAULT_PRIORITY = 5


def jobs_of(documents: Snapshot | Mapping[str, Any]) -> list[dict[str, Any]]:
    """The job records (dicts only; a legacy file's stray entries are skipped)."""
    found = documents.get(JOBS_PATH) or {}
    jobs = found.get("jobs") if isinstance(found, Mapping) else None
    return [job for job in jobs or [] if isinstance(job, dict)]


def list_jobs(
    documents: Snapshot | Mapping[str, Any], status: str | None = None
) -> list[dict[str, Any]]:
    """Jobs, optionally of one status, most urgent first, then oldest."""
    chosen = [job for job in jobs_of(documents) if status in (None, job.get("status"))]
    return sorted(chosen, key=claim_order)


def find_job(
    documents: Snapshot | Mapping[str, Any], job_id: str
) -> dict[str, Any] | None:
    return next((job for job in jobs_of(documents) if job.get("id") == job_id), None)


def jobs_for(
    documents: Snapshot | Mapping[str, Any], node: str
) -> list[dict[str, Any]]:
    """The running jobs `node` holds."""
    return [
        job
        for job in jobs_of(documents)
        if job.get("status") == "running" and job.get("assigned_to") == node
    ]


def claimable_jobs(
    documents: Snapshot | Mapping[str, Any],
    types: Sequence[str],
    labels: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Queued jobs of `types` whose required labels are all in `labels`, in order."""
    return [
        job
        for job in list_jobs(documents, "queued")
        if is_runnable_by(job, types, labels)
    ]


def is_runnable_by(
    job: Mapping[str, Any], types: Sequence[str], labels: Sequence[str]
) -> bool:
    """Whether a server running `types` and offering `labels` may take `job`."""
    return job.get("type") in types and set(job_labels(job)) <= set(labels)


def claim_order(job: Mapping[str, Any]) -> tuple[int, float, str]:
    """Priority 1 first; ties go to the oldest (by `created_at`, else by its id)."""
    priority = job.get("priority")
    if not isinstance(priority, int) or isinstance(priority, bool):
        priority = DEFAULT_PRIORITY
    created = parse_timestamp(job.get("created_at")) or id_time(str(job.get("id")))
    return (
        priority,
        created.timestamp() if created else float("inf"),
        str(job.get("id")),
    )


def job_attempt(job: Mapping[str, Any]) -> int:
    """The current try's number; a legacy job without one is on its first."""
    attempt = job.get("attempt")
    return attempt if isinstance(attempt, int) and attempt >= 1 else 1


def attempt_key(job: Mapping[str, Any]) -> tuple[str, int]:
    """One run of a job: its id and attempt number."""
    return (str(job.get("id")), job_attempt(job))


def job_labels(job: Mapping[str, Any]) -> list[str]:
    labels = job.get("labels")
    return [label for label in labels if isinstance(label, str)] if labels else []


def is_cancel_requested(job: Mapping[str, Any]) -> bool:
    return bool(job.get("cancel_requested"))


def job_age(job: Mapping[str, Any], now: datetime | None = None) -> float | None:
    """Seconds since the job was created, when that is known."""
    created = parse_timestamp(job.get("created_at")) or id_time(str(job.get("id")))
    return ((now or now_utc()) - created).total_seconds() if created else None


# Changes to one record, shared by the operations in `watcher.joblist`.


def fence_reason(
    job: dict[str, Any] | None, job_id: str, node: str | None, attempt: int
) -> str | None:
    """Why a write about (`node`'s) try `attempt` of a running job no longer applies."""
    if job is None:
        return f"there is no job {job_id}"
    if job.get("status") != "running":
        return f"job {job_id} is {job.get('status')}, not running"
    if node is not None and job.get("assigned_to") != node:
        return f"job {job_id} is held by {job.get('assigned_to')}, not {node}"
    if job_attempt(job) != attempt:
        return f"job {job_id} is on attempt {job_attempt(job)}, not {attempt}"
    return None


def start_try(job: dict[str, Any], node: str, now: str, lease_seconds: float) -> None:
    job.update(status="running", assigned_to=node, started_at=now, completed_at=None)
    job["attempt"] = job_attempt(job)
    job["lease"] = {"holder": node, "acquired_at": now, "seconds": lease_seconds}


def finish_job(job: dict[str, Any], status: str, now: str, reason: str | None) -> None:
    job.update(status=status, completed_at=now)
    job.pop("lease", None)
    if reason:
        job["reason"] = reason


def remember_try(job: dict[str, Any], now: str, reason: str) -> None:
    """Keep one line per abandoned try, so a requeued job's story stays readable."""
    tries = job.get("previous_attempts")
    tries = tries if isinstance(tries, list) else []
    tries.append(
        {
            "attempt": job_attempt(job),
            "holder": job.get("assigned_to"),
            "started_at": job.get("started_at"),
            "ended_at": now,
            "reason": reason,
        }
    )
    job["previous_attempts"] = tries
