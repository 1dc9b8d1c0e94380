"""The fleet at a glance: who is alive, what each server runs, jobs, locks, mail.

Computed from git objects (the remote-tracking tip of the main branch and the
heartbeat branches), never from the working tree, into a `FleetView` that
`status` and `dashboard` render. Liveness comes from a `Judgement`
(`watcher.judgement` says how a command judges outside the daemon).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from watcher.config import Config
from watcher.diff import diff_snapshots
from watcher.documents import Snapshot, read_snapshot
from watcher.gitrepo import run_git
from watcher.heartbeat import Heartbeat, read_heartbeats
from watcher.jobrecords import list_jobs
from watcher.judgement import Judgement, judge
from watcher.layout import MESSAGES_PATH, server_ids, status_path
from watcher.leases import locks_of
from watcher.liveness import Liveness, PeerView
from watcher.messages import Message, inbox, message_records, to_message
from watcher.timestamps import format_timestamp, now_utc, parse_timestamp

_JOB_TEXT_FIELDS = (
    "type",
    "branch",
    "assigned_to",
    "created_at",
    "started_at",
    "completed_at",
)


@dataclass(frozen=True)
class ServerRow:
    """One server: how this observer judges it and what it says it is doing."""

    server: str
    liveness: Liveness
    since: datetime | None
    age_seconds: float | None
    offset_seconds: float | None
    last_heartbeat: str | None
    status: str | None
    current_job: str | None
    last_build: Mapping[str, Any] | None
    system: Mapping[str, Any] | None
    details: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "liveness": self.liveness.value,
            "since": _iso(self.since),
            "age_seconds": self.age_seconds,
            "offset_seconds": self.offset_seconds,
            "last_heartbeat": self.last_heartbeat,
            "status": self.status,
            "current_job": self.current_job,
            "last_build": self.last_build,
            "system": self.system,
            **self.details,
        }


@dataclass(frozen=True)
class JobRow:
    id: str
    type: str | None
    status: str
    priority: Any
    branch: str | None
    assigned_to: str | None
    created_at: str | None
    started_at: str | None
    completed_at: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LockRow:
    name: str
    holder: str | None
    locked_at: str | None
    expires_at: str | None
    is_expired: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def server_rows(
    documents: Mapping[str, Any],
    heartbeats: Mapping[str, Heartbeat],
    judgement: Judgement,
) -> list[ServerRow]:
    """Every server the repository or the heartbeat branches know, by name."""
    names = set(server_ids(set(documents))) | set(heartbeats) | set(judgement.peers)
    return [
        _server_row(name, documents, heartbeats.get(name), judgement.peers.get(name))
        for name in sorted(names)
    ]


def _server_row(
    name: str,
    documents: Mapping[str, Any],
    heartbeat: Heartbeat | None,
    view: PeerView | None,
) -> ServerRow:
    status = _mapping(documents.get(status_path(name)))
    beat = _mapping(heartbeat.document if heartbeat else None)
    system = beat.get("system") or status.get("system")
    details: dict[str, Any] = {
        key: status[key] for key in ("ip", "manager") if key in status
    }
    return ServerRow(
        server=name,
        liveness=view.state if view else Liveness.UNKNOWN,
        since=view.since if view else None,
        age_seconds=view.age_seconds if view else None,
        offset_seconds=view.offset_seconds if view else None,
        last_heartbeat=_text(beat.get("timestamp"))
        or (view.peer_timestamp if view else None),
        status=_text(status.get("status")) or _text(beat.get("status")),
        current_job=_job_id(status.get("current_job")),
        last_build=_mapping(status.get("last_build")) or None,
        system=system if isinstance(system, dict) else None,
        details=details,
    )


def job_rows(documents: Mapping[str, Any]) -> list[JobRow]:
    """The queue's jobs, most urgent first, then oldest (legacy entries tolerated)."""
    return [
        JobRow(
            **{name: _text(job.get(name)) for name in _JOB_TEXT_FIELDS},
            id=_text(job.get("id")) or "?",
            status=_text(job.get("status")) or "queued",
            priority=job.get("priority"),
        )
        for job in list_jobs(documents)
    ]


def jobs_by_state(rows: list[JobRow]) -> dict[str, list[JobRow]]:
    grouped: dict[str, list[JobRow]] = {}
    for row in rows:
        grouped.setdefault(row.status, []).append(row)
    return grouped


def lock_rows(documents: Mapping[str, Any], now: datetime) -> list[LockRow]:
    """Held locks; `is_expired` is by this machine's clock, for display only."""
    rows = []
    for name, record in sorted(locks_of(documents).items()):
        if not record.get("locked_by"):
            continue
        expires = parse_timestamp(record.get("expires_at"))
        rows.append(
            LockRow(
                name=str(name),
                holder=_text(record.get("locked_by")),
                locked_at=_text(record.get("locked_at")),
                expires_at=_text(record.get("expires_at")),
                is_expired=expires is not None and expires < now,
            )
        )
    return rows


def _job_id(value: Any) -> str | None:
    """`current_job` is an id, or in older files an object holding one."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return _text(value)


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _iso(moment: datetime | None) -> str | None:
    return format_timestamp(moment) if moment else None


@dataclass(frozen=True)
class EventRow:
    """A recent event, reduced to what a page or a terminal shows."""

    kind: str
    subject: str
    actor: str | None
    when: str | None
    commit: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FleetView:
    """Everything `status` and `dashboard` show, computed before any rendering."""

    observer: str | None
    generated_at: datetime
    commit: str | None
    judgement: Judgement
    servers: list[ServerRow]
    jobs: dict[str, list[JobRow]]
    locks: list[LockRow]
    unread: list[Message]
    messages: list[Message]
    events: list[EventRow] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)

    def servers_in(self, state: Liveness) -> list[ServerRow]:
        return [row for row in self.servers if row.liveness is state]

    def to_json(self) -> dict[str, Any]:
        return {
            "observer": self.observer,
            "generated_at": format_timestamp(self.generated_at),
            "commit": self.commit,
            "liveness_source": self.judgement.source,
            "caveat": self.judgement.caveat,
            "servers": [row.to_json() for row in self.servers],
            "jobs": {
                state: [row.to_json() for row in rows]
                for state, rows in self.jobs.items()
            },
            "locks": [row.to_json() for row in self.locks],
            "unread": [message.to_json(read=False) for message in self.unread],
            "messages": [
                _message_json(message, self.observer) for message in self.messages
            ],
            "events": [row.to_json() for row in self.events],
            "problems": self.problems,
        }


def compute_fleet(
    snapshot: Snapshot,
    heartbeats: Mapping[str, Heartbeat],
    judgement: Judgement,
    me: str | None,
    now: datetime,
    *,
    events: list[EventRow] | None = None,
    recent_messages: int = 10,
) -> FleetView:
    """The fleet as `me` sees it at `now`, from documents already read."""
    documents = snapshot.documents
    unread = [entry.message for entry in inbox(documents, me)] if me else []
    messages = [
        to_message(record) for record in message_records(documents.get(MESSAGES_PATH))
    ]
    return FleetView(
        observer=me,
        generated_at=now,
        commit=snapshot.commit,
        judgement=judgement,
        servers=server_rows(documents, heartbeats, judgement),
        jobs=jobs_by_state(job_rows(documents)),
        locks=lock_rows(documents, now),
        unread=unread,
        messages=messages[-recent_messages:][::-1] if recent_messages else [],
        events=events or [],
        problems={path: found[0].message for path, found in snapshot.problems.items()},
    )


def _message_json(message: Message, me: str | None) -> dict[str, Any]:
    return message.to_json(read=me is not None and me in message.read_by)


def load_fleet(
    config: Config, now: datetime | None = None, *, events: int = 0
) -> FleetView:
    """The fleet from git objects as last fetched; `events` recent commits replayed."""
    from watcher.transaction import read_shared_snapshot

    now = now or now_utc()
    snapshot = read_shared_snapshot(config)
    heartbeats = read_heartbeats(config.repo, config.remote)
    judgement = judge(config, heartbeats, snapshot.documents, now)
    rows = [_saved_event_row(item) for item in judgement.recent_events]
    if events and snapshot.commit:
        rows += commit_events(config.repo, snapshot.commit, events)
    rows.sort(key=lambda row: row.when or "", reverse=True)
    return compute_fleet(
        snapshot, heartbeats, judgement, config.node, now, events=rows[: events or None]
    )


def commit_events(repo: Path, commit: str, count: int) -> list[EventRow]:
    """The events of the last `count` commits on the first-parent line to `commit`."""
    log = [
        "log",
        "--first-parent",
        f"--max-count={count + 1}",
        "--format=%H %cI",
        commit,
    ]
    lines = run_git(log, cwd=repo).decode().splitlines()
    rows: list[EventRow] = []
    previous: Snapshot | None = None
    for line in reversed(lines):
        sha, _, when = line.partition(" ")
        current = read_snapshot(repo, sha, previous)
        if previous is not None:
            stamp = _iso(parse_timestamp(when))
            for event in diff_snapshots(previous, current, None):
                rows.append(
                    EventRow(event.kind.value, event.subject, event.actor, stamp, sha)
                )
        previous = current
    return rows


def _saved_event_row(item: Mapping[str, Any]) -> EventRow:
    return EventRow(
        kind=str(item.get("kind", "")),
        subject=str(item.get("subject", "")),
        actor=None,
        when=_text(item.get("when")),
        commit=None,
    )
