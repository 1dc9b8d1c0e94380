"""From two versions of the documents to the ordered events between them.

Records are matched by identity, never by position: jobs by `id`, locks by name,
messages by `message_identity`, servers by directory. A reordered array, a reformatted
file or a line-ending change parses to the same records and yields nothing.

`diff_snapshots` is pure: it knows nothing of what was reported before. A message
removed and re-added, or a file deleted and written again, looks new to it; the
caller's memory of seen messages (`watcher.progress.Progress.admit`) drops the
repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from watcher.documents import Snapshot
from watcher.events import Event, EventKind, event_id
from watcher.layout import (
    DocumentKind,
    heartbeat_path,
    kind_of,
    server_ids,
    server_of,
    status_path,
)
from watcher.problems import Problem
from watcher.recordstate import (
    JobState,
    Record,
    content_digest,
    index_records,
    is_addressed_to,
    job_key,
    job_state,
    lock_holding,
    lock_records,
    message_identity,
    message_key,
    moment_text,
    readers_of,
    records_of,
)
from watcher.timestamps import parse_timestamp

_RANK: dict[DocumentKind | None, int] = {
    DocumentKind.STATUS: 0,
    DocumentKind.BUILD_CONFIG: 1,
    DocumentKind.JOBS: 2,
    DocumentKind.LOCKS: 3,
    DocumentKind.MESSAGES: 4,
}
_ACTIVE = ("queued", "running")
_FINISHED = frozenset({"completed", "failed"})
_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Change:
    path: str
    commit: str | None
    me: str | None

    def event(
        self,
        kind: EventKind,
        subject: str,
        record: Record | None,
        previous: Record | None,
        state: tuple[Any, ...],
        *,
        actor: Any = None,
    ) -> Event:
        identity = event_id(kind, subject, *state)
        who = str(actor) if actor else None
        return Event(
            kind, identity, self.commit, self.path, subject, record, previous, actor=who
        )


def diff_snapshots(
    previous: Snapshot, current: Snapshot, me: str | None
) -> list[Event]:
    """The events from `previous` to `current`, as server `me` sees them.

    `me=None` observes as nobody in particular: every new message is reported.
    """
    events = _invalid_events(previous, current)
    joined = _joined_events(previous, current)
    events.extend(joined)
    newcomers = {event.subject for event in joined}
    for path in _changed_documents(previous, current):
        if server_of(path) in newcomers:
            continue
        old, new = previous.get(path), current.get(path)
        events.extend(diff_documents(path, old, new, me, current.commit))
    return events


def diff_documents(
    path: str, old_value: Any, new_value: Any, me: str | None, commit: str | None = None
) -> list[Event]:
    """The events between two parsed versions of the document at `path`."""
    differ = _DIFFERS.get(kind_of(path))
    if differ is None or old_value == new_value:
        return []
    return differ(_Change(path, commit, me), old_value, new_value)


def _changed_documents(previous: Snapshot, current: Snapshot) -> list[str]:
    """Paths whose parsed value is not the very same object in both snapshots."""
    paths = set(previous.documents) | set(current.documents)
    changed = [
        path
        for path in paths
        if previous.documents.get(path) is not current.documents.get(path)
        and kind_of(path) in _RANK
    ]
    return sorted(changed, key=lambda path: (_RANK[kind_of(path)], path))


def _invalid_events(previous: Snapshot, current: Snapshot) -> list[Event]:
    """One event per newly broken version of a document; a repeat of it says nothing."""
    events = []
    for path in sorted(current.problems):
        blob = current.blobs.get(path)
        if path in previous.problems and previous.blobs.get(path) == blob:
            continue
        kind = EventKind.DOCUMENT_INVALID
        problem = _worst(current.problems[path])
        identity = event_id(kind, path, blob)
        events.append(
            Event(kind, identity, current.commit, path, path, None, None, problem)
        )
    return events


def _worst(problems: Iterable[Problem]) -> Problem | None:
    ordered = sorted(problems, key=lambda problem: not problem.is_error)
    return ordered[0] if ordered else None


def _joined_events(previous: Snapshot, current: Snapshot) -> list[Event]:
    if current.blobs.keys() <= previous.blobs.keys():
        return []
    known = set(server_ids(previous.paths))
    events = []
    for server in server_ids(current.paths):
        if server in known:
            continue
        path = status_path(server)
        if path not in current.blobs:
            path = heartbeat_path(server)
        change = _Change(path, current.commit, None)
        kind = EventKind.SERVER_JOINED
        record = _mapping(current.get(path))
        events.append(change.event(kind, server, record, None, (), actor=server))
    return events


def _diff_status(change: _Change, old_value: Any, new_value: Any) -> list[Event]:
    old, new = _mapping(old_value) or {}, _mapping(new_value)
    if new is None or old.get("status") == new.get("status"):
        return []
    server = server_of(change.path) or change.path
    moment = new.get("timestamp", new.get("last_updated", new.get("updated_at")))
    state = (old.get("status"), new.get("status"), moment_text(moment))
    kind = EventKind.SERVER_STATUS_CHANGED
    return [change.event(kind, server, new, _mapping(old_value), state, actor=server)]


def _diff_config(change: _Change, old_value: Any, new_value: Any) -> list[Event]:
    kind = EventKind.CONFIG_CHANGED
    new, old = _mapping(new_value), _mapping(old_value)
    return [change.event(kind, change.path, new, old, (content_digest(new_value),))]


def _diff_jobs(change: _Change, old_value: Any, new_value: Any) -> list[Event]:
    old = index_records(records_of(old_value, "jobs"), job_key)
    new = index_records(records_of(new_value, "jobs"), job_key)
    events: list[Event] = []
    for key in sorted(new, key=str):
        record, before = new[key], old.get(key)
        if before is None or before != record:
            events.extend(_job_events(change, before, record))
    return events


def _job_events(change: _Change, before: Record | None, record: Record) -> list[Event]:
    subject, after = str(record["id"]), job_state(record)
    events = []
    if before is None:
        created = moment_text(record.get("created_at"))
        actor = record.get("submitted_by", record.get("created_by"))
        kind = EventKind.JOB_QUEUED
        events.append(
            change.event(
                kind, subject, record, None, (after.attempt, created), actor=actor
            )
        )
    prior = (
        job_state(before) if before else JobState("queued", after.attempt, None, None)
    )
    for kind in _job_transitions(prior, after):
        state, actor = _job_detail(kind, prior, after, record)
        events.append(change.event(kind, subject, record, before, state, actor=actor))
    return events


def _job_transitions(prior: JobState, after: JobState) -> list[EventKind]:
    """The steps from one job state to the next, in the order they happened."""
    reentered = after.status in _ACTIVE and prior.status not in ("queued", after.status)
    taken_over = (
        prior.status == after.status == "running" and prior.assignee != after.assignee
    )
    moved = after.attempt > prior.attempt or reentered or taken_over
    kinds = [EventKind.JOB_REQUEUED] if moved else []
    if after.status == "running" and (prior.status != "running" or moved):
        kinds.append(EventKind.JOB_CLAIMED)
    if after.status in _FINISHED and (prior.status != after.status or moved):
        kinds.append(EventKind.JOB_FINISHED)
    if after.status == "cancelled" and prior.status != "cancelled":
        kinds.append(EventKind.JOB_CANCELLED)
    return kinds


def _job_detail(
    kind: EventKind, prior: JobState, after: JobState, record: Record
) -> tuple[tuple[Any, ...], Any]:
    """The state that names this step (for its id) and who took it."""
    if kind is EventKind.JOB_REQUEUED:
        state = (prior.status, prior.assignee, prior.started_at)
        return (after.attempt, *state), record.get("requeued_by")
    if kind is EventKind.JOB_CLAIMED:
        return (after.attempt, after.assignee, after.started_at), after.assignee
    if kind is EventKind.JOB_FINISHED:
        finished = moment_text(record.get("completed_at"))
        return (after.attempt, after.status, finished), after.assignee
    return (after.attempt,), record.get("cancelled_by")


def _diff_locks(change: _Change, old_value: Any, new_value: Any) -> list[Event]:
    old, new = lock_records(old_value), lock_records(new_value)
    events = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name, {}), new.get(name, {})
        held_before, held_after = lock_holding(before), lock_holding(after)
        if held_before == held_after:
            continue
        if held_before[0]:
            state = (*held_before, moment_text(before.get("locked_at")))
            kind, holder = EventKind.LOCK_RELEASED, held_before[0]
            events.append(
                change.event(kind, name, new.get(name), before, state, actor=holder)
            )
        if held_after[0]:
            state = (*held_after, moment_text(after.get("locked_at")))
            kind, holder = EventKind.LOCK_ACQUIRED, held_after[0]
            events.append(
                change.event(kind, name, after, old.get(name), state, actor=holder)
            )
    return events


def _diff_messages(change: _Change, old_value: Any, new_value: Any) -> list[Event]:
    old = index_records(records_of(old_value, "messages"), message_identity)
    new = index_records(records_of(new_value, "messages"), message_identity)
    events = []
    for key, record in new.items():
        before = old.get(key)
        if before is None or before != record:
            events.extend(_message_events(change, before, record))
    return sorted(events, key=_message_order)


def _message_events(
    change: _Change, before: Record | None, record: Record
) -> list[Event]:
    subject = str(record.get("id", message_key(record)))
    identity = (str(record.get("from", "")), str(record.get("subject", "")))
    events = []
    if is_addressed_to(record, change.me) and not (
        before is not None and is_addressed_to(before, change.me)
    ):
        kind, sender = EventKind.MESSAGE_RECEIVED, record.get("from")
        events.append(
            change.event(kind, subject, record, before, identity, actor=sender)
        )
    if before is not None:
        for reader in sorted(readers_of(record) - readers_of(before)):
            kind, state = EventKind.MESSAGE_READ, (*identity, reader)
            events.append(
                change.event(kind, subject, record, before, state, actor=reader)
            )
    return events


def _message_order(event: Event) -> tuple[datetime, str, int, str]:
    record = event.record or {}
    moment = parse_timestamp(record.get("timestamp")) or _EARLIEST
    return (
        moment,
        event.subject,
        event.kind is EventKind.MESSAGE_READ,
        event.actor or "",
    )


def _mapping(value: Any) -> Record | None:
    return value if isinstance(value, Mapping) else None


_DIFFERS: dict[DocumentKind | None, Callable[[_Change, Any, Any], list[Event]]] = {
    DocumentKind.STATUS: _diff_status,
    DocumentKind.BUILD_CONFIG: _diff_config,
    DocumentKind.JOBS: _diff_jobs,
    DocumentKind.LOCKS: _diff_locks,
    DocumentKind.MESSAGES: _diff_messages,
}
