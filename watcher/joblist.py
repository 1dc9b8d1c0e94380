"""The job queue in `coordination/jobs.json`: operations that change it, and queries.

A job goes `queued` -> `running` -> `completed`, `failed` or `cancelled`. Its
`attempt` numbers the current try (1 for a new job; a requeue raises it) and
fences every write about a try: a claim, a finish or a requeue naming another
attempt is moot, so a holder that lost its job never reports over the next one.
A running job holds a `lease`, `{"holder": ID, "acquired_at": TIME, "seconds": N}`,
which lasts as long as the holder's heartbeat keeps changing on its own branch (no
main-branch commit renews it); a peer requeues the job once that heartbeat has
been silent for `seconds` plus the configured margin, on the peer's own clock.

Cancelling a queued job ends it at once; cancelling a running one records
`cancel_requested` (`{"by": ID, "at": TIME}`), and its holder stops the build and
finishes it as `cancelled`. Every write keeps the fields this module does not know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from watcher.draft import Draft, Moot, operation_payload, register_operation
from watcher.errors import UsageError
from watcher.gitrepo import check_ref_format
from watcher.ids import new_id
from watcher.jobrecords import (
    DEFAULT_PRIORITY,
    FINISHED,
    STATUSES,
    claim_order,
    claimable_jobs,
    fence_reason,
    find_job,
    finish_job,
    is_cancel_requested,
    job_age,
    job_attempt,
    job_labels,
    jobs_for,
    jobs_of,
    list_jobs,
    remember_try,
    start_try,
)
from watcher.layout import JOBS_PATH
from watcher.timestamps import format_timestamp, now_utc

__all__ = [
    "FINISHED",
    "STATUSES",
    "CancelJob",
    "ClaimJob",
    "ClaimNext",
    "FinishJob",
    "RequeueJob",
    "SubmitJob",
    "claim_order",
    "claimable_jobs",
    "find_job",
    "is_cancel_requested",
    "job_age",
    "job_attempt",
    "job_labels",
    "jobs_for",
    "jobs_of",
    "list_jobs",
]
DEFAULT_LEASE_SECONDS = 180.0
MAX_PRIORITY = 10
_HEX_COMMIT = frozenset("0123456789abcdef")


def _jobs_document(draft: Draft) -> dict[str, Any]:
    document = draft.read(JOBS_PATH, {"jobs": []})
    if not isinstance(document, dict):
        document = {"jobs": []}
    if not isinstance(document.get("jobs"), list):
        document["jobs"] = []
    return document


def _job_in(document: dict[str, Any], job_id: str) -> dict[str, Any] | None:
    jobs = document["jobs"]
    return next(
        (j for j in jobs if isinstance(j, dict) and j.get("id") == job_id), None
    )


@register_operation
@dataclass(frozen=True)
class SubmitJob:
    """Queue a new job; its id and time are fixed when the request is made, so a
    replay from the offline queue finds it already there instead of adding twice."""

    name: ClassVar[str] = "submit"
    type: str
    branch: str
    commit: str | None = None
    priority: int = DEFAULT_PRIORITY
    description: str = ""
    labels: tuple[str, ...] = ()
    timeout: float | None = None
    job_id: str = field(default_factory=lambda: new_id("job"))
    created_at: str = field(default_factory=lambda: format_timestamp(now_utc()))

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
        problems = submit_problems(self)
        if problems:
            raise UsageError(
                "cannot submit this job: " + "; ".join(problems),
                hint="build-watcher submit --type TYPE --branch BRANCH "
                "[--commit SHA] [--priority 1-10]",
            )

    def apply(self, draft: Draft) -> str | Moot:
        document = _jobs_document(draft)
        draft.result = self.job_id
        if _job_in(document, self.job_id) is not None:
            return Moot(f"job {self.job_id} is already queued")
        document["jobs"].append(self.record(draft.node))
        draft.write(JOBS_PATH, document)
        return f"submit {self.job_id} ({self.type} {self.branch})"

    def record(self, node: str) -> dict[str, Any]:
        job: dict[str, Any] = {
            "id": self.job_id,
            "type": self.type,
            "priority": self.priority,
            "description": self.description,
            "branch": self.branch,
            "commit": self.commit,
            "status": "queued",
            "assigned_to": None,
            "attempt": 1,
            "submitted_by": node,
            "created_at": self.created_at,
            "started_at": None,
            "completed_at": None,
        }
        if self.labels:
            job["labels"] = list(self.labels)
        if self.timeout is not None:
            job["timeout"] = self.timeout
        return job

    def to_json(self) -> dict[str, Any]:
        return operation_payload(self)


def submit_problems(request: SubmitJob) -> list[str]:
    """What is wrong with a job request, before it reaches the queue."""
    problems = []
    if not request.type or not request.type.replace("_", "").replace("-", "").isalnum():
        problems.append(f"type {request.type!r} must be a word such as build")
    if request.branch.startswith("-") or not check_ref_format(request.branch):
        problems.append(f"branch {request.branch!r} is not a valid git branch name")
    commit = request.commit
    if commit is not None and not (
        7 <= len(commit) <= 40 and set(commit) <= _HEX_COMMIT
    ):
        problems.append(f"commit {commit!r} must be 7 to 40 lowercase hex digits")
    if isinstance(request.priority, bool) or not 1 <= request.priority <= MAX_PRIORITY:
        problems.append(
            f"priority {request.priority!r} must be 1 (most urgent) to {MAX_PRIORITY}"
        )
    if request.timeout is not None and request.timeout <= 0:
        problems.append(f"timeout {request.timeout!r} must be positive seconds")
    return problems


@register_operation
@dataclass(frozen=True)
class CancelJob:
    """End a queued job now; ask the holder of a running one to stop it."""

    name: ClassVar[str] = "cancel"
    job_id: str

    def apply(self, draft: Draft) -> str | Moot:
        document = _jobs_document(draft)
        job = _job_in(document, self.job_id)
        if job is None:
            return Moot(f"there is no job {self.job_id}")
        status = job.get("status")
        if status in FINISHED:
            return Moot(f"job {self.job_id} is already {status}")
        if status == "running":
            if is_cancel_requested(job):
                return Moot(f"cancelling job {self.job_id} was already requested")
            job["cancel_requested"] = {"by": draft.node, "at": draft.timestamp}
            summary = f"ask {job.get('assigned_to')} to cancel {self.job_id}"
        else:
            finish_job(job, "cancelled", draft.timestamp, f"cancelled by {draft.node}")
            summary = f"cancel {self.job_id}"
        draft.result = job.get("status")
        draft.write(JOBS_PATH, document)
        return summary

    def to_json(self) -> dict[str, Any]:
        return {"job_id": self.job_id}


@register_operation
@dataclass(frozen=True)
class ClaimJob:
    """Take one queued job; moot when it is no longer queued (someone was first)
    or, with `attempt`, when it is on another try than the one seen."""

    name: ClassVar[str] = "claim"
    job_id: str
    node: str
    attempt: int | None = None
    lease_seconds: float = DEFAULT_LEASE_SECONDS

    def apply(self, draft: Draft) -> str | Moot:
        document = _jobs_document(draft)
        job = _job_in(document, self.job_id)
        if job is None:
            return Moot(f"there is no job {self.job_id}")
        if job.get("status") != "queued":
            holder = job.get("assigned_to")
            return Moot(f"job {self.job_id} is {job.get('status')} (by {holder})")
        if self.attempt is not None and job_attempt(job) != self.attempt:
            return Moot(f"job {self.job_id} is on attempt {job_attempt(job)}")
        start_try(job, self.node, draft.timestamp, self.lease_seconds)
        draft.result = dict(job)
        draft.write(JOBS_PATH, document)
        return f"claim {self.job_id}"

    def to_json(self) -> dict[str, Any]:
        return operation_payload(self)


@register_operation
@dataclass(frozen=True)
class ClaimNext:
    """Take the most urgent, then oldest, queued job this server can run, if it
    has a free slot. `draft.result` is the claimed job record."""

    name: ClassVar[str] = "claim-next"
    node: str
    types: tuple[str, ...]
    labels: tuple[str, ...] = ()
    slots: int = 1
    lease_seconds: float = DEFAULT_LEASE_SECONDS

    def apply(self, draft: Draft) -> str | Moot:
        document = _jobs_document(draft)
        if len(jobs_for({JOBS_PATH: document}, self.node)) >= self.slots:
            return Moot(f"{self.node} already runs {self.slots} job(s)")
        candidates = claimable_jobs({JOBS_PATH: document}, self.types, self.labels)
        if not candidates:
            return Moot("no queued job this server can run")
        job = _job_in(document, str(candidates[0].get("id")))
        assert job is not None  # found in this very document just above
        start_try(job, self.node, draft.timestamp, self.lease_seconds)
        draft.result = dict(job)
        draft.write(JOBS_PATH, document)
        return f"claim {job.get('id')}"

    def to_json(self) -> dict[str, Any]:
        return operation_payload(self)

    def __post_init__(self) -> None:
        object.__setattr__(self, "types", tuple(self.types))
        object.__setattr__(self, "labels", tuple(self.labels))


@register_operation
@dataclass(frozen=True)
class FinishJob:
    """Record the end of a try: moot unless `node` still holds this `attempt`."""

    name: ClassVar[str] = "finish"
    job_id: str
    node: str
    attempt: int
    status: str
    reason: str | None = None
    artifacts: tuple[dict[str, Any], ...] = ()
    log: str | None = None
    exit_code: int | None = None

    def __post_init__(self) -> None:
        if self.status not in FINISHED:
            raise ValueError(f"a job finishes as one of {sorted(FINISHED)}")
        object.__setattr__(self, "artifacts", tuple(dict(a) for a in self.artifacts))

    def apply(self, draft: Draft) -> str | Moot:
        document = _jobs_document(draft)
        job = _job_in(document, self.job_id)
        reason = fence_reason(job, self.job_id, self.node, self.attempt)
        if reason is not None:
            return Moot(reason)
        assert job is not None  # fenced off when missing
        finish_job(job, self.status, draft.timestamp, self.reason)
        job["artifacts"] = [dict(artifact) for artifact in self.artifacts]
        job.update({k: v for k, v in self._extras().items() if v is not None})
        draft.result = dict(job)
        draft.write(JOBS_PATH, document)
        return f"{self.status} {self.job_id}"

    def _extras(self) -> dict[str, Any]:
        return {"log": self.log, "exit_code": self.exit_code}

    def to_json(self) -> dict[str, Any]:
        return operation_payload(self)


@register_operation
@dataclass(frozen=True)
class RequeueJob:
    """Put a running job back in the queue with its attempt raised (its holder is
    gone), or fail it once `max_attempts` tries are spent, or end it as cancelled
    when a cancel was asked for. Moot if the job moved on from `expected_attempt`."""

    name: ClassVar[str] = "requeue"
    job_id: str
    expected_attempt: int
    reason: str
    max_attempts: int = 3

    def apply(self, draft: Draft) -> str | Moot:
        document = _jobs_document(draft)
        job = _job_in(document, self.job_id)
        reason = fence_reason(job, self.job_id, None, self.expected_attempt)
        if reason is not None:
            return Moot(reason)
        assert job is not None  # fenced off when missing
        summary = self._settle(job, draft)
        draft.result = dict(job)
        draft.write(JOBS_PATH, document)
        return summary

    def _settle(self, job: dict[str, Any], draft: Draft) -> str:
        remember_try(job, draft.timestamp, self.reason)
        if is_cancel_requested(job):
            finish_job(job, "cancelled", draft.timestamp, self.reason)
            return f"cancelled {self.job_id}: {self.reason}"
        if self.expected_attempt >= self.max_attempts:
            reason = f"gave up after {self.expected_attempt} attempts: {self.reason}"
            finish_job(job, "failed", draft.timestamp, reason)
            return f"failed {self.job_id} after {self.expected_attempt} attempts"
        job.update(status="queued", assigned_to=None, started_at=None)
        job["attempt"] = self.expected_attempt + 1
        job.pop("lease", None)
        return f"requeue {self.job_id} as attempt {job['attempt']}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        return operation_payload(self)
