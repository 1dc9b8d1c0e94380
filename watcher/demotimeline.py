"""The demo's timeline: the shared history as `build-watcher log` shows it, and
the liveness changes each daemon saw (those are judged, not committed).

History is replayed straight from the bare remote, a few commits at a time as
they arrive, and each event is printed with the log command's own line. A
liveness change is printed with the same line; its commit column names the
server that saw it instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from watcher.commands.log import render_line
from watcher.documents import Snapshot
from watcher.events import Event, EventKind, event_id
from watcher.gitrepo import resolve_commit
from watcher.history import CommitInfo, replay
from watcher.judgement import load_view
from watcher.layout import heartbeat_path
from watcher.timestamps import now_utc, parse_timestamp

# Every claim and finish also changes the server's status; those lines add nothing.
HIDDEN = frozenset({EventKind.SERVER_STATUS_CHANGED})
LIVENESS_KINDS = {
    EventKind.SERVER_STALE.value: EventKind.SERVER_STALE,
    EventKind.SERVER_RECOVERED.value: EventKind.SERVER_RECOVERED,
}


@dataclass(frozen=True)
class Notice:
    """A liveness change one daemon saw: `observer` judged `subject` `kind`."""

    observer: str
    kind: EventKind
    subject: str
    when: str

    def as_event(self) -> Event:
        record = {"server": self.subject, "seen_by": self.observer}
        identity = event_id(self.kind, self.subject, self.observer, self.when)
        path = heartbeat_path(self.subject)
        return Event(
            self.kind,
            identity,
            None,
            path,
            self.subject,
            record,
            None,
            None,
            self.observer,
        )


@dataclass
class Timeline:
    """What the demo has seen so far, printed through `emit` as it arrives."""

    remote: Path
    emit: Callable[[str], None]
    snapshot: Snapshot | None = None
    events: list[Event] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)

    def poll(self, views: Mapping[str, Path]) -> None:
        """Print what is new, commits and liveness changes, in order of time."""
        lines = self.follow_history()
        for observer, path in sorted(views.items()):
            lines += self.follow_view(observer, path)
        for _, line in sorted(lines, key=lambda item: item[0]):
            self.emit(line)

    def follow_history(self) -> list[tuple[datetime, str]]:
        tip = resolve_commit(self.remote, "main")
        if tip is None or (self.snapshot and tip == self.snapshot.commit):
            return []
        since = self.snapshot.commit if self.snapshot else None
        lines = []
        for step in replay(
            self.remote, None, since=since, until=tip, start=self.snapshot
        ):
            for event in step.events:
                self.events.append(event)
                if event.kind not in HIDDEN:
                    lines.append((step.commit.time, render_line(step.commit, event)))
            self.snapshot = step.snapshot
        return lines

    def follow_view(self, observer: str, path: Path) -> list[tuple[datetime, str]]:
        view = load_view(path)
        lines: list[tuple[datetime, str]] = []
        for item in reversed(list(view.recent_events if view else ())):
            notice = _notice(observer, item)
            if notice is None or notice in self.notices:
                continue
            self.notices.append(notice)
            seen = _seen_by(notice)
            lines.append((seen.time, render_line(seen, notice.as_event())))
        return lines

    # Questions the demo asks.

    def tip(self) -> str | None:
        """The last commit replayed."""
        return self.snapshot.commit if self.snapshot else None

    def documents(self) -> Mapping[str, Any]:
        return self.snapshot.documents if self.snapshot else {}

    def of_kind(self, kind: EventKind) -> Iterator[Event]:
        return (event for event in self.events if event.kind is kind)

    def joined(self) -> set[str]:
        return {event.subject for event in self.of_kind(EventKind.SERVER_JOINED)}

    def claims(self) -> list[tuple[str, int]]:
        """(job, attempt) of every claim in the history, repeats included."""
        return [
            (event.subject, int((event.record or {}).get("attempt") or 1))
            for event in self.of_kind(EventKind.JOB_CLAIMED)
        ]

    def finishes(self) -> list[str]:
        """The job of every recorded finish, repeats included."""
        return [event.subject for event in self.of_kind(EventKind.JOB_FINISHED)]

    def holder(self, job_id: str, attempt: int) -> str | None:
        """Who claimed `attempt` of the job, once the claim is shared."""
        for event in self.of_kind(EventKind.JOB_CLAIMED):
            record = event.record or {}
            if event.subject == job_id and record.get("attempt", 1) == attempt:
                return str(record.get("assigned_to") or event.actor)
        return None

    def finished(self, job_id: str) -> bool:
        return any(e.subject == job_id for e in self.of_kind(EventKind.JOB_FINISHED))

    def reply_to(self, message_id: str) -> bool:
        return any(
            (event.record or {}).get("reply_to") == message_id
            for event in self.of_kind(EventKind.MESSAGE_RECEIVED)
        )

    def noticed(self, observer: str, kind: str, subject: str) -> bool:
        return any(
            n.observer == observer and n.kind.value == kind and n.subject == subject
            for n in self.notices
        )


def _notice(observer: str, item: Mapping[str, Any]) -> Notice | None:
    kind = LIVENESS_KINDS.get(str(item.get("kind")))
    if kind is None:
        return None
    return Notice(observer, kind, str(item.get("subject")), str(item.get("when")))


def _seen_by(notice: Notice) -> CommitInfo:
    """The log line's commit column, naming the observer: no commit records this."""
    moment = parse_timestamp(notice.when) or now_utc()
    return CommitInfo(f"{notice.observer:<8}", moment, notice.observer, "")
