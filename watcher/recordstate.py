"""What identifies a coordination record and which of its fields make up its state.

Shared by the diff (which matches records across versions) and by anything that
must agree with it on identity, such as the memory of messages already reported.
Legacy spellings are folded here, once: both job status vocabularies, `attempts`
for `attempt`, `holder` for `locked_by`, the `read` flag beside `read_by`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

from watcher.timestamps import format_timestamp, parse_timestamp

Record = Mapping[str, Any]
BROADCAST = "all"
# Legacy scripts spelt job states their own way; these map them onto the five.
_JOB_STATUS = {
    "pending": "queued",
    "new": "queued",
    "waiting": "queued",
    "claimed": "running",
    "assigned": "running",
    "in_progress": "running",
    "building": "running",
    "started": "running",
    "done": "completed",
    "complete": "completed",
    "success": "completed",
    "succeeded": "completed",
    "error": "failed",
    "failure": "failed",
    "canceled": "cancelled",
    "aborted": "cancelled",
}


class JobState(NamedTuple):
    """What decides a job's events; `attempt` is 1 when the record does not say."""

    status: str
    attempt: int
    assignee: str | None
    started_at: str | None


def job_state(record: Record) -> JobState:
    status = str(record.get("status") or "queued").strip().lower()
    attempt = record.get("attempt", record.get("attempts", 1))
    return JobState(
        _JOB_STATUS.get(status, status),
        attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else 1,
        str(record["assigned_to"]) if record.get("assigned_to") else None,
        moment_text(record.get("started_at")),
    )


def message_identity(record: Record) -> tuple[Any, ...]:
    """A message's identity: its id, sender and subject.

    Legacy data reuses ids for different messages, and rewrites old messages with
    timestamps cut to the minute and bodies with retyped quotes; sender and subject
    survive those rewrites. A message without an id is known by sender, recipient,
    subject and minute.
    """
    if "id" in record:
        identity: tuple[Any, ...] = (
            record["id"],
            record.get("from"),
            record.get("subject"),
        )
    else:
        moment = parse_timestamp(record.get("timestamp"))
        minute = moment.strftime("%Y-%m-%dT%H:%M") if moment else None
        parts = (record.get("from"), record.get("to"), record.get("subject"))
        identity = (None, *parts, minute)
    try:
        hash(identity)
    except TypeError:
        identity = tuple(json.dumps(part, sort_keys=True) for part in identity)
    return identity


def message_key(record: Record) -> str:
    """`message_identity` as text, for storing."""
    parts = message_identity(record)
    return "\x1f".join("" if part is None else str(part) for part in parts)


def is_addressed_to(record: Record, me: str | None) -> bool:
    """To me or to `all` and not from me; with `me=None`, every message."""
    if me is None:
        return True
    if record.get("from") == me:
        return False
    to = record.get("to")
    recipients = to if isinstance(to, list) else [to]
    return me in recipients or BROADCAST in recipients


def readers_of(record: Record) -> set[str]:
    """Who has read a message; "" for a legacy `read: true` on a broadcast (unknown)."""
    read_by = record.get("read_by")
    readers = (
        {str(name) for name in read_by if name} if isinstance(read_by, list) else set()
    )
    read = record.get("read")
    if isinstance(read, Mapping):
        readers.update(str(name) for name, flag in read.items() if flag)
    elif isinstance(read, list):
        readers.update(str(name) for name in read if name)
    elif read is True:
        to = record.get("to")
        readers.add(to if isinstance(to, str) and to != BROADCAST else "")
    return readers


def lock_records(value: Any) -> dict[str, Record]:
    """Locks by name, from `{"locks": {name: record}}` or a legacy list with `name`."""
    locks = value.get("locks") if isinstance(value, Mapping) else value
    if isinstance(locks, Mapping):
        return {
            str(name): rec for name, rec in locks.items() if isinstance(rec, Mapping)
        }
    if not isinstance(locks, list):
        return {}
    named = [rec for rec in locks if isinstance(rec, Mapping) and "name" in rec]
    return {str(rec["name"]): rec for rec in named}


def lock_holding(record: Record) -> tuple[str | None, Any]:
    """The holder and epoch: a change of either is a release and a new acquisition."""
    holder = record.get("locked_by", record.get("holder"))
    return (str(holder) if holder else None), record.get("epoch")


def records_of(value: Any, key: str) -> list[Record]:
    """The records of `{key: [...]}`, or of a bare legacy list; non-objects skipped."""
    items = value.get(key) if isinstance(value, Mapping) else value
    if not isinstance(items, list):
        return []
    # `type() is dict` first: the isinstance check against the Mapping ABC is slow,
    # and a messages.json holds tens of thousands of records.
    return [item for item in items if type(item) is dict or isinstance(item, Mapping)]


def job_key(record: Record) -> str | None:
    return str(record["id"]) if record.get("id") is not None else None


def index_records(
    records: list[Record], key_of: Callable[[Record], Hashable | None]
) -> dict[Hashable, Record]:
    """Records by identity; duplicates of one identity are told apart by content.

    A known shortcoming: when a second record arrives with an identity already in
    use, the first one's key changes too and it is reported again. Strict data
    has unique ids, so this only touches legacy repositories.
    """
    index: dict[Hashable, Record] = {}
    duplicates: dict[Hashable, list[Record]] = {}
    for record in records:
        key = key_of(record)
        if key is None:
            continue
        if key in index:
            duplicates.setdefault(key, [index[key]]).append(record)
        index[key] = record
    for key, group in duplicates.items():
        del index[key]
        for record in group:
            index[(key, content_digest(record))] = record
    return index


def content_digest(value: Any) -> str:
    """A short digest of a value's content, blind to key order and formatting."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def moment_text(value: Any) -> str | None:
    """A timestamp in the written form when readable, else the raw value as text."""
    moment = parse_timestamp(value)
    if moment is not None:
        return format_timestamp(moment)
    return None if value is None else str(value)
