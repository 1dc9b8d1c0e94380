"""A build as the shared repository records it: the claim and the finish, each one
commit that also updates this server's `status.json`.

Starting a job claims it (`ClaimNext`) and sets the server `building` with the job
as `current_job`. Finishing it records the result in the job (fenced by the
attempt, so a holder that lost the job writes nothing), writes the trimmed log to
`<server>/logs/<timestamp>-<job id>.log` and sets `last_build` in the seed's shape
(`id`, `status` as `success`/`failed`/`cancelled`, `branch`, `commit`,
`completed_at`, `duration_seconds`, `log`, `artifacts` with size and SHA-256). The
job id in the log's name keeps two jobs finishing in the same second apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from watcher.build import BuildResult, BuildStatus
from watcher.joblist import ClaimNext, FinishJob, RequeueJob, jobs_for
from watcher.jobrecords import job_attempt
from watcher.layout import JOBS_PATH
from watcher.serverstatus import StatusUpdate
from watcher.transaction import Draft, Moot, register_operation

JOB_STATUS = {
    BuildStatus.COMPLETED: "completed",
    BuildStatus.FAILED: "failed",
    BuildStatus.TIMED_OUT: "failed",
    BuildStatus.CANCELLED: "cancelled",
}
# The seed's words for a finished build in `status.json`.
BUILD_WORD = {"completed": "success", "failed": "failed", "cancelled": "cancelled"}
SERVER_STATUS_AFTER = {"completed": "success", "failed": "failed", "cancelled": "idle"}


def log_path(server: str, moment: datetime, job_id: str) -> str:
    return f"{server}/logs/{moment.strftime('%Y%m%dT%H%M%SZ')}-{job_id}.log"


@register_operation
@dataclass(frozen=True)
class StartJob:
    """Claim the next job this server can run and show it as `building`."""

    name: ClassVar[str] = "start-job"
    claim: ClaimNext

    def apply(self, draft: Draft) -> str | Moot:
        summary = self.claim.apply(draft)
        if isinstance(summary, Moot):
            return summary
        job = draft.result
        StatusUpdate(self.claim.node, "building", current_job=str(job["id"])).apply(
            draft
        )
        draft.result = job
        return summary

    def to_json(self) -> dict[str, Any]:
        claim = self.claim
        return {
            "node": claim.node,
            "types": list(claim.types),
            "labels": list(claim.labels),
            "slots": claim.slots,
            "lease_seconds": claim.lease_seconds,
        }

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> StartJob:
        types, labels = tuple(payload["types"]), tuple(payload["labels"])
        return cls(ClaimNext(**{**payload, "types": types, "labels": labels}))


@register_operation
@dataclass(frozen=True)
class FinishBuild:
    """Record one try's end, its trimmed log and the server's `last_build`."""

    name: ClassVar[str] = "finish-build"
    job_id: str
    node: str
    attempt: int
    status: str
    reason: str
    log_text: str
    exit_code: int | None = None
    duration_seconds: float = 0.0
    source_commit: str | None = None
    artifacts: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "artifacts", tuple(dict(a) for a in self.artifacts))

    def apply(self, draft: Draft) -> str | Moot:
        path = log_path(self.node, draft.now, self.job_id)
        finish = FinishJob(
            self.job_id,
            self.node,
            self.attempt,
            self.status,
            self.reason,
            self.artifacts,
            path,
            self.exit_code,
        )
        summary = finish.apply(draft)
        if isinstance(summary, Moot):
            return summary
        job = draft.result
        draft.write_bytes(path, self.log_text.encode("utf-8"))
        last_build = self.last_build(job, path)
        show_status(draft, self.node, SERVER_STATUS_AFTER[self.status], last_build)
        draft.result = job
        return summary

    def last_build(self, job: dict[str, Any], path: str) -> dict[str, Any]:
        return {
            "id": self.job_id,
            "type": job.get("type"),
            "status": BUILD_WORD[self.status],
            "branch": job.get("branch"),
            "commit": self.source_commit or job.get("commit"),
            "attempt": self.attempt,
            "started_at": job.get("started_at"),
            "completed_at": job.get("completed_at"),
            "duration_seconds": round(self.duration_seconds, 1),
            "log": path,
            "artifacts": [dict(artifact) for artifact in self.artifacts],
        }

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["artifacts"] = [dict(artifact) for artifact in self.artifacts]
        return data


def show_status(
    draft: Draft, node: str, resting: str, last_build: dict[str, Any] | None = None
) -> None:
    """This server's status after a job left it: still `building` while it runs
    another, else `resting`."""
    still_running = jobs_for({JOBS_PATH: draft.read(JOBS_PATH)}, node)
    if still_running:
        current = str(still_running[0].get("id"))
        StatusUpdate(node, "building", current, last_build).apply(draft)
    else:
        StatusUpdate(node, resting, None, last_build).apply(draft)


def finish_for(result: BuildResult, job: dict[str, Any], node: str) -> FinishBuild:
    """The finishing write for `result` of the try `job` describes."""
    return FinishBuild(
        job_id=result.job_id,
        node=node,
        attempt=job_attempt(job),
        status=JOB_STATUS[result.status],
        reason=result.reason,
        log_text=result.trimmed_log,
        exit_code=result.exit_code,
        duration_seconds=result.duration,
        source_commit=result.source_commit,
        artifacts=tuple(artifact.to_json() for artifact in result.artifacts),
    )


@register_operation
@dataclass(frozen=True)
class ReturnJob:
    """Give back a job this server holds but no longer runs (it is stopping, or the
    job is left over from before a restart): requeue it with the attempt raised, or
    fail it once `max_attempts` are spent, and take it off this server's status."""

    name: ClassVar[str] = "return-job"
    job_id: str
    node: str
    attempt: int
    reason: str
    max_attempts: int = 3

    def apply(self, draft: Draft) -> str | Moot:
        requeue = RequeueJob(self.job_id, self.attempt, self.reason, self.max_attempts)
        summary = requeue.apply(draft)
        if isinstance(summary, Moot):
            return summary
        job = draft.result
        show_status(draft, self.node, "idle")
        draft.result = job
        return summary

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
