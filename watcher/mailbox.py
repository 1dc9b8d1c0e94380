"""Message writes, as transaction operations: send, mark read, archive.

Each is applied to the documents at the remote tip (`watcher.transaction`). A new
message's id is chosen when the operation is made, not when it is applied, so a
retry after a refused push, or a replay from the offline queue, sends the same
message once: the operation is moot when the id is already there.

The read side (who a message is for, who has read it, the inbox) is in
`watcher.messages` and is re-exported here.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from watcher.credentials import describe_findings, find_secrets
from watcher.documents import dump_document
from watcher.errors import UsageError, WatcherError
from watcher.ids import new_id
from watcher.jsonload import MAX_BYTES
from watcher.layout import MESSAGES_PATH, is_valid_server_id
from watcher.messages import (
    BROADCAST,
    MESSAGE_TYPES,
    PRIORITIES,
    InboxEntry,
    Message,
    archive_path,
    archive_paths,
    find_records,
    inbox,
    is_for,
    is_read_by,
    is_read_by_all,
    known_servers,
    mark_read,
    message_records,
    thread_depth,
)
from watcher.timestamps import format_timestamp, parse_timestamp
from watcher.transaction import Draft, Moot, register_operation

__all__ = [
    "BROADCAST",
    "ArchiveMessages",
    "InboxEntry",
    "MarkRead",
    "Message",
    "SendMessage",
    "find_records",
    "inbox",
    "is_for",
    "is_read_by",
    "is_read_by_all",
    "known_servers",
    "thread_depth",
]


_LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"  # as str.splitlines() breaks


def check_subject(subject: str) -> None:
    """A subject is one line of text: no line break or other control character."""
    for position, character in enumerate(subject, start=1):
        if unicodedata.category(character) in ("Cc", "Zl", "Zp"):
            found = (
                "a line break" if character in _LINE_BREAKS else "a control character"
            )
            raise UsageError(
                f"the subject must be one line of text; it holds {found} "
                f"({character!r}) at character {position}",
                hint="keep --subject to one line and put the rest in the body "
                "(--body, --body-file or standard input)",
            )


def check_no_secrets(subject: str, body: str) -> None:
    """Refuse text that looks like a credential: once pushed, every clone has it."""
    findings = find_secrets(subject, "subject") + find_secrets(body, "body")
    if findings:
        raise UsageError(
            "the message looks like it holds a credential "
            f"({describe_findings(findings)}); once pushed it would be in every "
            "clone of the repository for good",
            hint="remove it and share it another way, or pass --allow-secret if it is "
            "not a real credential",
        )


def _messages_document(
    draft: Draft, path: str = MESSAGES_PATH, *, oversized: bool = False
) -> dict[str, Any]:
    """A message store for writing; a legacy bare list is wrapped in an object.

    `oversized`: also a store the loader refuses only for its size, for the one
    operation that shrinks it.
    """
    document = draft.read(path, {"messages": []}, oversized=oversized)
    if isinstance(document, list):
        document = {"messages": document}
    if isinstance(document, dict) and isinstance(
        document.setdefault("messages", []), list
    ):
        return document
    raise WatcherError(
        f"{path}: $.messages: not a list of messages (at {draft.base.commit}); "
        "refusing to write over it",
        hint=f"repair {path} on the remote branch (`build-watcher validate {path}`)",
    )


@register_operation
@dataclass(frozen=True)
class SendMessage:
    """Append one message; `to` must be a server with a directory, or `all`."""

    name: ClassVar[str] = "send"

    to: str
    subject: str
    body: str = ""
    type: str = "info"
    reply_to: str | None = None
    automated: bool = False
    priority: str = "normal"
    allow_secret: bool = False
    message_id: str = field(default_factory=lambda: new_id("msg"))

    def __post_init__(self) -> None:
        if self.to != BROADCAST and not is_valid_server_id(self.to):
            raise UsageError(f"recipient {self.to!r} is not a server id or `all`")
        if self.type not in MESSAGE_TYPES:
            raise UsageError(
                f"message type {self.type!r} is not one of {', '.join(MESSAGE_TYPES)}"
            )
        if self.priority not in PRIORITIES:
            raise UsageError(
                f"priority {self.priority!r} is not one of {', '.join(PRIORITIES)}"
            )
        if not self.subject.strip():
            raise UsageError("a message needs a subject", hint="pass --subject TEXT")
        check_subject(self.subject)
        if not self.allow_secret:
            check_no_secrets(self.subject, self.body)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def apply(self, draft: Draft) -> str | Moot:
        self._check_references(draft)
        document = _messages_document(draft)
        draft.result = self.message_id
        if any(record.get("id") == self.message_id for record in document["messages"]):
            return Moot(f"{self.message_id} is already in {MESSAGES_PATH}")
        document["messages"].append(self.record(draft))
        draft.write(MESSAGES_PATH, document)
        return f"send {self.message_id} to {self.to}"

    def _check_references(self, draft: Draft) -> None:
        """`reply_to` must exist; `to` must be a known server, `all`, or the sender
        of the message replied to (anyone who wrote may be answered)."""
        replied = (
            find_records(draft.base.documents, self.reply_to) if self.reply_to else []
        )
        if self.reply_to and not replied:
            raise UsageError(
                f"--reply-to {self.reply_to}: no such message in {MESSAGES_PATH} or "
                f"the archive at {draft.base.commit}",
                hint="`build-watcher inbox --all` lists the messages for this server",
            )
        known = known_servers(draft.base.paths)
        senders = {record.get("from") for _, record in replied}
        if self.to == BROADCAST or self.to in known or self.to in senders:
            return
        listed = ", ".join(known) or "none yet"
        raise UsageError(
            f"unknown recipient {self.to!r}: the servers in the repository are "
            f"{listed}",
            hint="send to one of them, or to `all`; a server appears once it has "
            "published its status",
        )

    def record(self, draft: Draft) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": self.message_id,
            "from": draft.node,
            "to": self.to,
            "type": self.type,
            "priority": self.priority,
            "subject": self.subject,
            "body": self.body,
            "timestamp": format_timestamp(draft.now),
            "read": False,
            "read_by": [],
        }
        if self.reply_to:
            record["reply_to"] = self.reply_to
        if self.automated:
            record["automated"] = True
        return record


@dataclass(frozen=True)
class ReadResult:
    """What `MarkRead` found: newly marked, already read, and archived ids."""

    marked: tuple[str, ...]
    already: tuple[str, ...]


@register_operation
@dataclass(frozen=True)
class MarkRead:
    """Record this server in `read_by` of the given messages."""

    name: ClassVar[str] = "read"

    message_ids: tuple[str, ...]

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> MarkRead:
        return cls(tuple(payload["message_ids"]))

    def to_json(self) -> dict[str, Any]:
        return {"message_ids": list(self.message_ids)}

    def apply(self, draft: Draft) -> str | Moot:
        document = _messages_document(draft)
        wanted = set(self.message_ids)
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in document["messages"]:
            if record.get("id") in wanted:
                found[record["id"]].append(record)
        archived = self._archived(draft, wanted - set(found))
        self._check(draft, found, wanted - set(found) - archived)
        marked = [mid for mid, records in found.items() if self._mark(records, draft)]
        already = sorted(wanted - set(marked))
        draft.result = ReadResult(tuple(sorted(marked)), tuple(already))
        if not marked:
            return Moot(f"already read by {draft.node}: {', '.join(already)}")
        draft.write(MESSAGES_PATH, document)
        return f"read {', '.join(sorted(marked))}"

    @staticmethod
    def _archived(draft: Draft, missing: set[str]) -> set[str]:
        """Archived messages were read by all their recipients already."""
        ids: set[Any] = set()
        for path in archive_paths(draft.base.paths):
            ids.update(r.get("id") for r in message_records(draft.base.get(path)))
        return missing & ids

    @staticmethod
    def _check(
        draft: Draft, found: dict[str, list[dict[str, Any]]], unknown: set[str]
    ) -> None:
        if unknown:
            raise UsageError(
                f"no message {', '.join(sorted(unknown))} in {MESSAGES_PATH} or the "
                f"archive at {draft.base.commit}",
                hint="`build-watcher inbox --all` lists the messages for this server",
            )
        for message_id, records in found.items():
            if not any(is_for(record, draft.node) for record in records):
                record = records[0]
                raise UsageError(
                    f"message {message_id} is from {record.get('from')} to "
                    f"{record.get('to')}, not for {draft.node}",
                    hint="only a recipient can mark a message read",
                )

    @staticmethod
    def _mark(records: list[dict[str, Any]], draft: Draft) -> bool:
        """Mark every stored copy for me; a reused id names all its messages."""
        changed = [mark_read(r, draft.node) for r in records if is_for(r, draft.node)]
        return any(changed)


@register_operation
@dataclass(frozen=True)
class ArchiveMessages:
    """Move old messages read by all their recipients to monthly archive files.

    An archive file is new content, so it must pass the strict profile: moved
    legacy records are written in the strict form by the rules of `migrate`
    (timestamps rewritten, `type` and `read_by` filled in, a repeated id replaced
    with the old one kept as `legacy_id`). The store they leave is only shortened.
    """

    name: ClassVar[str] = "archive-messages"

    older_than_days: float

    def to_json(self) -> dict[str, Any]:
        return {"older_than_days": self.older_than_days}

    def apply(self, draft: Draft) -> str | Moot:
        # The loader's hint for a store over its size limit is to archive: so
        # archiving must be able to read one.
        document = _messages_document(draft, oversized=True)
        records = document["messages"]
        cutoff = draft.now - timedelta(days=self.older_than_days)
        chosen = _choose(records, cutoff, known_servers(draft.base.paths))
        moved: set[int] = set()
        draft.result = {}
        for path, indices in sorted(chosen.items()):
            archive, count = _archive_with(draft, path, [records[i] for i in indices])
            if count:
                draft.write(path, archive)
                draft.result[path] = count
                moved.update(indices[:count])
        if not moved:
            return Moot(self._why_nothing(chosen))
        document["messages"] = [r for i, r in enumerate(records) if i not in moved]
        draft.write(MESSAGES_PATH, document)
        return f"archive {len(moved)} messages"

    def _why_nothing(self, chosen: dict[str, list[int]]) -> str:
        if chosen:
            return (
                f"the archive files {', '.join(sorted(chosen))} are full (the "
                f"{MAX_BYTES // 2**20} MiB limit of a coordination file)"
            )
        return (
            f"no message older than {self.older_than_days:g} days has been read "
            "by all its recipients"
        )


def _choose(
    records: list[Any], cutoff: datetime, known: list[str]
) -> dict[str, list[int]]:
    """The records (by index) that may move, by archive file, in order."""
    chosen: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        is_record = isinstance(record, dict)
        when = parse_timestamp(record.get("timestamp")) if is_record else None
        if when is not None and when < cutoff and is_read_by_all(record, known):
            chosen[archive_path(when)].append(index)
    return chosen


def _archive_with(
    draft: Draft, path: str, records: list[dict[str, Any]]
) -> tuple[dict[str, Any], int]:
    """The archive file at `path` with as many of `records` as fit under the
    loader's size limit (the oldest first), in the strict form; and how many.

    A file over the limit could be read by nobody: a month's messages beyond it
    stay in the store, to move once the limit allows it.
    """
    from watcher.migration import migrate_documents  # costs `send` time

    archive = _messages_document(draft, path)
    count = len(records)
    while count:
        candidate = {**archive, "messages": [*archive["messages"], *records[:count]]}
        migrated = migrate_documents({path: candidate}, draft.now).documents
        written = migrated.get(path, candidate)
        size = len(dump_document(written))
        if size <= MAX_BYTES:
            return written, count
        count = min(count - 1, int(count * MAX_BYTES / size * 0.98))
    return archive, 0
