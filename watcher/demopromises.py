"""What the demo promises, judged afterwards from the shared history.

Each promise is checked from what the fleet recorded (the jobs and messages at
the remote's tip, the claims in its history, the liveness changes the daemons
saw), never from what the demo itself did, so the demo doubles as an
end-to-end test of the product.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from watcher.demotimeline import Timeline
from watcher.layout import JOBS_PATH, MESSAGES_PATH

SHA256_DIGITS = 64


@dataclass(frozen=True)
class Check:
    """One promise, whether it was kept, and the evidence in a line."""

    promise: str
    ok: bool
    detail: str


@dataclass
class Plan:
    """What the operator did, for the checks: job ids, message ids, the victim."""

    slow_job: str = ""
    builds: list[str] = field(default_factory=list)
    ping: str = ""
    pinged: str = ""
    victim: str = ""

    @property
    def jobs(self) -> list[str]:
        return [self.slow_job, *self.builds]


def check_promises(
    timeline: Timeline, plan: Plan, servers: Sequence[str]
) -> list[Check]:
    """Each promise of the demo, judged from the shared repository's history."""
    documents = timeline.documents()
    jobs = {
        str(job.get("id")): job
        for job in (documents.get(JOBS_PATH) or {}).get("jobs", [])
        if isinstance(job, dict)
    }
    survivors = [node for node in servers if node != plan.victim]
    return [
        _claimed_once(timeline, plan),
        _completed_with_artifacts(jobs, plan),
        _noticed(timeline, plan, survivors),
        _taken_over(jobs, plan),
        _answered(documents, plan),
    ]


def _claimed_once(timeline: Timeline, plan: Plan) -> Check:
    claims = Counter(timeline.claims())
    finishes = Counter(timeline.finishes())
    repeated = [f"{job} #{try_}" for (job, try_), n in claims.items() if n > 1]
    repeated += [f"{job} finished {n} times" for job, n in finishes.items() if n > 1]
    missing = [job for job in plan.jobs if finishes[job] == 0]
    return Check(
        "every job was claimed exactly once per attempt, and finished once",
        not repeated and not missing,
        f"{sum(claims.values())} claims for {len(claims)} attempts, "
        f"{sum(finishes.values())} finishes for {len(plan.jobs)} jobs"
        + (f"; repeated: {', '.join(repeated)}" if repeated else "")
        + (f"; never finished: {', '.join(missing)}" if missing else ""),
    )


def _completed_with_artifacts(jobs: Mapping[str, Any], plan: Plan) -> Check:
    recorded = [
        artifact
        for job_id in plan.jobs
        if jobs.get(job_id, {}).get("status") == "completed"
        for artifact in jobs[job_id].get("artifacts") or []
        if _is_sha256(artifact.get("sha256"))
    ]
    names = sorted({str(artifact.get("file")) for artifact in recorded})
    digests = sorted({str(artifact["sha256"]) for artifact in recorded})
    same = " (the same bytes from every server)" if len(digests) == 1 else ""
    return Check(
        "every build completed and recorded its artifact with its SHA-256",
        len(recorded) >= len(plan.jobs),
        f"{len(recorded)} artifacts for {len(plan.jobs)} jobs: "
        f"{', '.join(names) or 'none'}, sha256 "
        f"{', '.join(d[:16] + '…' for d in digests) or '-'}{same}",
    )


def _is_sha256(value: Any) -> bool:
    text = str(value or "")
    return len(text) == SHA256_DIGITS and all(c in "0123456789abcdef" for c in text)


def _noticed(timeline: Timeline, plan: Plan, survivors: list[str]) -> Check:
    def observers(kind: str) -> list[str]:
        return [n for n in survivors if timeline.noticed(n, kind, plan.victim)]

    stale, back = observers("server.stale"), observers("server.recovered")
    return Check(
        f"the killed server ({plan.victim}) was seen stale, then back, by the others",
        stale == survivors and back == survivors,
        f"stale to {', '.join(stale) or 'nobody'}; "
        f"back to {', '.join(back) or 'nobody'}",
    )


def _taken_over(jobs: Mapping[str, Any], plan: Plan) -> Check:
    job = jobs.get(plan.slow_job, {})
    tries = job.get("previous_attempts") or [{}]
    # More than two attempts is no broken promise: on a starved machine a
    # survivor may itself look silent for a moment and lose the job in turn.
    ok = (
        job.get("status") == "completed"
        and int(job.get("attempt") or 1) >= 2
        and job.get("assigned_to") not in (None, plan.victim)
        and tries[0].get("holder") == plan.victim
    )
    return Check(
        "the killed server's job was requeued and finished by another",
        ok,
        f"{plan.slow_job}: attempt {job.get('attempt')} by {job.get('assigned_to')}, "
        f"attempt 1 by {tries[0].get('holder')} ended: {tries[0].get('reason', '-')}",
    )


def _answered(documents: Mapping[str, Any], plan: Plan) -> Check:
    messages = (documents.get(MESSAGES_PATH) or {}).get("messages", [])
    replies = [
        message
        for message in messages
        if isinstance(message, dict) and message.get("reply_to") == plan.ping
    ]
    sender = replies[0].get("from") if replies else None
    ok = len(replies) == 1 and replies[0].get("automated") is True
    return Check(
        f"the ping to {plan.pinged} was answered automatically, once",
        ok and sender == plan.pinged,
        f"{len(replies)} automated reply from {sender or 'nobody'}",
    )
