"""Messages as stored: who a message is for, who has read it, inbox queries.

Read state is per recipient: `read_by` lists the servers that have read a message.
The seed format's single `read` flag is kept for a message addressed to one server
(it becomes true when that server reads it) and is honoured on old data for that
recipient only. On a broadcast an old `read: true` is ignored: it does not say who
read it, and honouring it is what hid broadcasts from everyone but the first reader.
So an old broadcast shows as unread to each server until that server reads it.

Queries work on plain documents (`{path: value}`) and never fail on legacy shapes:
messages without `type`, `priority` or `read`, timestamps in any shape that
`parse_timestamp` knows, non-unique ids, stray non-object entries. This module
imports nothing heavy, so that `build-watcher inbox` starts fast; the writes (send,
mark read, archive) are operations in `watcher.mailbox`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from watcher.layout import ARCHIVE_DIR, MESSAGES_PATH, server_ids
from watcher.recordstate import message_key, readers_of
from watcher.timestamps import parse_timestamp

BROADCAST = "all"
MESSAGE_TYPES = ("info", "warning", "error", "request", "response")
PRIORITIES = ("low", "normal", "high", "urgent")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Message:
    """One stored message with the fields the product reads made regular."""

    id: str
    sender: str
    to: str
    type: str
    subject: str
    body: str
    timestamp: str
    when: datetime | None
    priority: str
    read_by: tuple[str, ...]
    reply_to: str | None
    automated: bool
    path: str

    def to_json(self, *, read: bool) -> dict[str, Any]:
        return {
            "id": self.id,
            "from": self.sender,
            "to": self.to,
            "type": self.type,
            "priority": self.priority,
            "subject": self.subject,
            "body": self.body,
            "timestamp": self.timestamp,
            "read": read,
            "read_by": list(self.read_by),
            "reply_to": self.reply_to,
            "automated": self.automated,
            "path": self.path,
        }


@dataclass(frozen=True)
class InboxEntry:
    message: Message
    is_read: bool

    def to_json(self) -> dict[str, Any]:
        return self.message.to_json(read=self.is_read)


def message_records(document: Any) -> list[dict[str, Any]]:
    """The message objects of a messages or archive document, whatever its shape."""
    records = document.get("messages") if isinstance(document, dict) else document
    if not isinstance(records, list):
        return []
    return [record for record in records if isinstance(record, dict)]


def archive_path(moment: datetime) -> str:
    return f"{ARCHIVE_DIR}/messages-{moment:%Y-%m}.json"


def archive_paths(paths: Iterable[str]) -> list[str]:
    prefix = f"{ARCHIVE_DIR}/messages-"
    return sorted(path for path in paths if path.startswith(prefix))


def known_servers(paths: Iterable[str]) -> list[str]:
    """Servers with a directory in the repository: the valid recipients, with `all`."""
    return server_ids(set(paths))


def recipients_of(record: Mapping[str, Any]) -> tuple[str, ...]:
    """`to` as a tuple; old data may hold a list of ids instead of one id."""
    to = record.get("to")
    if isinstance(to, str):
        return (to,)
    if isinstance(to, list):
        return tuple(item for item in to if isinstance(item, str))
    return ()


def is_for(record: Mapping[str, Any], me: str) -> bool:
    """Addressed to me or to all, and not sent by me."""
    if record.get("from") == me:
        return False
    to = record.get("to")
    if to in (me, BROADCAST):
        return True
    return isinstance(to, list) and (me in to or BROADCAST in to)


def is_single_recipient(record: Mapping[str, Any]) -> bool:
    to = record.get("to")
    return isinstance(to, str) and to != BROADCAST


def is_read_by(record: Mapping[str, Any], me: str) -> bool:
    """In `read_by`, or in a legacy `read` (a flag for a single recipient, or a
    list or table of readers); the spellings are folded in `readers_of`."""
    read_by = record.get("read_by")
    if isinstance(read_by, list) and me in read_by:
        return True
    return "read" in record and me in readers_of(record)


def is_read_by_all(record: Mapping[str, Any], known: Iterable[str]) -> bool:
    """Every recipient has read it; a broadcast's recipients are the known servers."""
    names = recipients_of(record)
    if BROADCAST in names:
        names = tuple(known)
    sender = record.get("from")
    return all(is_read_by(record, name) for name in names if name != sender)


def mark_read(record: dict[str, Any], me: str) -> bool:
    """Record that `me` read this message; False when that was already recorded."""
    read_by = record.get("read_by")
    if not isinstance(read_by, list):
        read_by = []
    if me in read_by:
        return False
    record["read_by"] = [*read_by, me]
    if record.get("to") == me and isinstance(record.get("read", False), bool):
        record["read"] = True
    return True


def inbox(
    documents: Mapping[str, Any], me: str, include_read: bool = False
) -> list[InboxEntry]:
    """Messages for `me`, oldest first; read ones (and the archive) only on request."""
    paths = (
        [*archive_paths(documents), MESSAGES_PATH] if include_read else [MESSAGES_PATH]
    )
    entries: list[tuple[datetime, int, int, InboxEntry]] = []
    seen: set[str] = set()
    for rank, path in enumerate(paths):
        records = message_records(documents.get(path))
        for position, record in enumerate(records):
            if not is_for(record, me):
                continue
            is_read = is_read_by(record, me)
            if is_read and not include_read:
                continue
            # Copies of one message (a botched merge) count once; an id reused
            # with another sender or subject is another message.
            key = message_key(record)
            if key in seen:
                continue
            seen.add(key)
            when = time_of(records, position)
            entry = InboxEntry(to_message(record, path, when), is_read)
            entries.append((when or _EPOCH, rank, position, entry))
    entries.sort(key=lambda item: item[:3])
    return [item[3] for item in entries]


def time_of(records: list[dict[str, Any]], position: int) -> datetime | None:
    """A record's time; one without a readable time takes the time of the nearest
    record before it, since messages are appended in order."""
    for index in range(position, -1, -1):
        when = parse_timestamp(records[index].get("timestamp"))
        if when is not None:
            return when
    return None


def to_message(
    record: Mapping[str, Any], path: str = MESSAGES_PATH, when: datetime | None = None
) -> Message:
    read_by = record.get("read_by")
    reply_to = record.get("reply_to")
    return Message(
        id=_text(record.get("id")),
        sender=_text(record.get("from")),
        to=", ".join(recipients_of(record)),
        type=_text(record.get("type")) or "info",
        subject=_text(record.get("subject")),
        body=_text(record.get("body")),
        timestamp=_text(record.get("timestamp")),
        when=when or parse_timestamp(record.get("timestamp")),
        priority=_text(record.get("priority")) or "normal",
        read_by=tuple(map(str, read_by)) if isinstance(read_by, list) else (),
        reply_to=reply_to if isinstance(reply_to, str) else None,
        automated=record.get("automated") is True,
        path=path,
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def find_records(
    documents: Mapping[str, Any], message_id: str
) -> list[tuple[str, dict[str, Any]]]:
    """Every stored record with this id, archive included, as (path, record)."""
    found = []
    for path in [*archive_paths(documents), MESSAGES_PATH]:
        for record in message_records(documents.get(path)):
            if record.get("id") == message_id:
                found.append((path, record))
    return found


def thread_depth(documents: Mapping[str, Any], record: Mapping[str, Any]) -> int:
    """How many messages the `reply_to` chain above `record` holds (0: not a reply)."""
    by_id: dict[str, Mapping[str, Any]] = {}
    for path in [*archive_paths(documents), MESSAGES_PATH]:
        for item in message_records(documents.get(path)):
            by_id.setdefault(_text(item.get("id")), item)
    depth, seen = 0, set()
    parent = record.get("reply_to")
    while isinstance(parent, str) and parent not in seen:
        seen.add(parent)
        depth += 1
        parent = by_id.get(parent, {}).get("reply_to")
    return depth
