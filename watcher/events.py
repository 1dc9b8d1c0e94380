"""Typed events: what happened in the shared repository, not which file changed.

An event's id is derived from what changed (its kind, its subject and the state
of the record that defines it), never from the commit or the clock, so every
server and every replay of the same history computes the same id for the same
change.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from watcher.problems import Problem, Severity


class EventKind(enum.Enum):
    JOB_QUEUED = "job.queued"
    JOB_CLAIMED = "job.claimed"
    JOB_FINISHED = "job.finished"
    JOB_CANCELLED = "job.cancelled"
    JOB_REQUEUED = "job.requeued"
    LOCK_ACQUIRED = "lock.acquired"
    LOCK_RELEASED = "lock.released"
    LOCK_EXPIRED = "lock.expired"
    MESSAGE_RECEIVED = "message.received"
    MESSAGE_READ = "message.read"
    SERVER_JOINED = "server.joined"
    SERVER_STATUS_CHANGED = "server.status_changed"
    SERVER_STALE = "server.stale"
    SERVER_RECOVERED = "server.recovered"
    CONFIG_CHANGED = "config.changed"
    DOCUMENT_INVALID = "document.invalid"


@dataclass(frozen=True)
class Event:
    """One thing that happened.

    `subject` is the record's identity within `path`: a job id, a lock name, a
    message id, a server id, or the path itself. `record` is the record after the
    change and `previous` before it (either may be None). `actor` is the server
    that made the change when the documents say so (the claimer, the lock holder,
    the sender, the reader), else None. The records are the parsed documents'
    own objects: handlers must treat them as read-only.
    """

    kind: EventKind
    id: str
    commit: str | None
    path: str
    subject: str
    record: Mapping[str, Any] | None
    previous: Mapping[str, Any] | None
    problem: Problem | None = None
    actor: str | None = None

    # The records are mappings, so the generated hash would fail; the id already
    # names the change, and the commit says where it was seen.
    def __hash__(self) -> int:
        return hash((self.kind, self.id, self.commit))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: for `--format json` and for handler commands' stdin."""
        return {
            "kind": self.kind.value,
            "id": self.id,
            "commit": self.commit,
            "path": self.path,
            "subject": self.subject,
            "actor": self.actor,
            "record": _plain(self.record),
            "previous": _plain(self.previous),
            "problem": self.problem.to_json() if self.problem else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        """The inverse of `to_json`, for events stored or piped between processes."""
        problem = data.get("problem")
        return cls(
            kind=EventKind(data["kind"]),
            id=data["id"],
            commit=data.get("commit"),
            path=data["path"],
            subject=data["subject"],
            record=data.get("record"),
            previous=data.get("previous"),
            problem=_problem_from_json(problem) if problem else None,
            actor=data.get("actor"),
        )


def event_id(kind: EventKind, subject: str, *state: Any) -> str:
    """A stable id from the kind, the subject and the state that defines the change."""
    canonical = json.dumps(
        [kind.value, subject, *state], sort_keys=True, ensure_ascii=False, default=str
    )
    digest = hashlib.blake2b(canonical.encode("utf-8"), digest_size=12).hexdigest()
    return f"evt_{digest}"


def _plain(value: Any) -> Any:
    """A deep copy made of plain dicts and lists, safe to serialise or hand out."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _problem_from_json(data: Mapping[str, Any]) -> Problem:
    fields = dict(data)
    fields["severity"] = Severity(fields.get("severity", "error"))
    return Problem(**fields)
