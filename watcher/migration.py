"""Rewrite a legacy coordination repository into the strict form, losing nothing.

The rules, applied to every document that has a schema:

- the `server_id` dialect of status and heartbeat files becomes `server`;
- every timestamp becomes RFC 3339 UTC with `Z`; a value that is not a timestamp
  at all (an unexpanded shell command) is kept beside it as `<field>_legacy`, and
  the field takes the time of the migration;
- jobs and messages whose id repeats an earlier one get a new unique id, the old
  one kept as `legacy_id`;
- job states outside the enumeration are mapped to the nearest one, the old value
  kept as `legacy_status`;
- messages get `type` (default `info`) and per-recipient `read_by`, derived from
  the global `read` flag: a message to one server that is read was read by that
  server; for a broadcast nobody can tell who read it, so it is shown again to all;
- the dashboard's early `servers` object becomes the array of later versions;
- locks get an `epoch`;
- artifacts listed by name alone (no size or checksum is known for them) move to
  `legacy_artifacts`, beside the records that have both.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from watcher.draft import Draft, Moot, register_operation
from watcher.errors import WatcherError
from watcher.ids import new_id
from watcher.layout import DocumentKind, kind_of
from watcher.problems import Problem
from watcher.timestamps import format_timestamp, parse_timestamp

_TIMESTAMP_KEYS = frozenset(
    {"timestamp", "last_updated", "last_cleanup", "last_heartbeat", "last_checked"}
)
_JOB_STATES = {
    "pending": "queued",
    "waiting": "queued",
    "new": "queued",
    "assigned": "running",
    "in_progress": "running",
    "started": "running",
    "building": "running",
    "done": "completed",
    "success": "completed",
    "succeeded": "completed",
    "complete": "completed",
    "error": "failed",
    "failure": "failed",
    "canceled": "cancelled",
    "aborted": "cancelled",
}
_STRICT_JOB_STATES = frozenset(
    {"queued", "running", "completed", "failed", "cancelled"}
)


@dataclass
class Migration:
    """What `migrate_documents` changed, document by document."""

    documents: dict[str, Any] = field(default_factory=dict)
    changes: dict[str, list[str]] = field(default_factory=dict)

    def note(self, path: str, change: str) -> None:
        self.changes.setdefault(path, []).append(change)

    @property
    def change_count(self) -> int:
        return sum(len(notes) for notes in self.changes.values())


def migrate_documents(documents: Mapping[str, Any], now: datetime) -> Migration:
    """The strict form of every document with a schema; others are left alone."""
    migration = Migration()
    for path in sorted(documents):
        kind = kind_of(path)
        if kind is None:
            continue
        value = copy.deepcopy(documents[path])
        rewrite = _REWRITES.get(kind)
        if rewrite is not None:
            rewrite(value, path, migration)
        _TimestampFixer(path, now, migration).walk(value, "$")
        _move_bare_artifacts(value, path, migration, "$")
        if value != documents[path]:
            migration.documents[path] = value
    return migration


@dataclass(frozen=True)
class _TimestampFixer:
    """Rewrites every timestamp field of one document in the written form."""

    path: str
    now: datetime
    migration: Migration

    def walk(self, value: Any, where: str) -> None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                self.walk(item, f"{where}[{index}]")
        elif isinstance(value, dict):
            for key in list(value):
                if _is_timestamp_key(key) and _is_scalar(value[key]):
                    self.fix(value, key, f"{where}.{key}")
                else:
                    self.walk(value[key], f"{where}.{key}")

    def fix(self, record: dict[str, Any], key: str, where: str) -> None:
        original = record[key]
        moment = parse_timestamp(original)
        written = format_timestamp(moment or self.now)
        if written == original:
            return
        record[key] = written
        if moment is None:
            record[f"{key}_legacy"] = original
            change = f"{original!r} is not a time; kept as {key}_legacy"
        else:
            change = f"{original!r} -> {written}"
        self.migration.note(self.path, f"{where}: {change}")


def _is_timestamp_key(key: str) -> bool:
    return key in _TIMESTAMP_KEYS or key.endswith("_at")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _move_bare_artifacts(
    value: Any, path: str, migration: Migration, where: str
) -> None:
    if isinstance(value, list):
        for index, item in enumerate(value):
            _move_bare_artifacts(item, path, migration, f"{where}[{index}]")
        return
    if not isinstance(value, dict):
        return
    artifacts = value.get("artifacts")
    if isinstance(artifacts, list) and any(not isinstance(a, dict) for a in artifacts):
        value["legacy_artifacts"] = artifacts
        value["artifacts"] = [a for a in artifacts if isinstance(a, dict)]
        migration.note(
            path, f"{where}.artifacts named without checksums -> legacy_artifacts"
        )
    for key, inner in value.items():
        if key not in ("artifacts", "legacy_artifacts"):
            _move_bare_artifacts(inner, path, migration, f"{where}.{key}")


def _server_dialect(value: Any, path: str, migration: Migration) -> None:
    if not isinstance(value, dict) or "server_id" not in value:
        return
    legacy = value.pop("server_id")
    if "server" not in value:
        value["server"] = legacy
    elif value["server"] != legacy:
        value["legacy_server_id"] = legacy
    migration.note(path, "$.server_id -> $.server")


def _unique_ids(
    records: list[Any], prefix: str, path: str, where: str, migration: Migration
) -> None:
    seen: set[str] = set()
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            continue
        old = record.get("id")
        if isinstance(old, str) and old not in seen:
            seen.add(old)
            continue
        record["id"] = new_id(prefix)
        if old is not None:
            record["legacy_id"] = old
        migration.note(
            path, f"{where}[{index}].id {old!r} -> {record['id']} (repeated)"
        )


def _jobs(value: Any, path: str, migration: Migration) -> None:
    jobs = value.get("jobs") if isinstance(value, dict) else None
    if not isinstance(jobs, list):
        return
    _unique_ids(jobs, "job", path, "$.jobs", migration)
    for index, job in enumerate(jobs):
        status = job.get("status") if isinstance(job, dict) else None
        if isinstance(status, str) and status not in _STRICT_JOB_STATES:
            job["legacy_status"] = status
            job["status"] = _JOB_STATES.get(status.lower(), "failed")
            migration.note(
                path, f"$.jobs[{index}].status {status!r} -> {job['status']}"
            )


def _messages(value: Any, path: str, migration: Migration) -> None:
    messages = value.get("messages") if isinstance(value, dict) else None
    if not isinstance(messages, list):
        return
    _unique_ids(messages, "msg", path, "$.messages", migration)
    for index, message in enumerate(messages):
        if isinstance(message, dict):
            _message_fields(message, path, f"$.messages[{index}]", migration)


def _message_fields(
    message: dict[str, Any], path: str, where: str, migration: Migration
) -> None:
    if "type" not in message:
        message["type"] = "info"
        migration.note(path, f"{where}.type set to 'info'")
    if "read_by" not in message:
        single = message.get("to") != "all" and message.get("read") is True
        message["read_by"] = [message["to"]] if single else []
        migration.note(path, f"{where}.read_by derived from read={message.get('read')}")
    if "read" not in message:
        message["read"] = bool(message["read_by"])


def _locks(value: Any, path: str, migration: Migration) -> None:
    locks = value.get("locks") if isinstance(value, dict) else None
    if not isinstance(locks, dict):
        return
    for name, lock in locks.items():
        if isinstance(lock, dict) and "epoch" not in lock:
            lock["epoch"] = 0
            migration.note(path, f"$.locks.{name}.epoch set to 0")


def _dashboard(value: Any, path: str, migration: Migration) -> None:
    servers = value.get("servers") if isinstance(value, dict) else None
    if isinstance(servers, dict):
        value["servers"] = [
            {"server": name, **(entry if isinstance(entry, dict) else {})}
            for name, entry in servers.items()
        ]
        migration.note(path, "$.servers object -> array")


_REWRITES: dict[DocumentKind, Callable[[Any, str, Migration], None]] = {
    DocumentKind.STATUS: _server_dialect,
    DocumentKind.HEARTBEAT: _server_dialect,
    DocumentKind.JOBS: _jobs,
    DocumentKind.MESSAGES: _messages,
    DocumentKind.MESSAGE_ARCHIVE: _messages,
    DocumentKind.LOCKS: _locks,
    DocumentKind.HEALTH_DASHBOARD: _dashboard,
}


def remaining_problems(
    documents: Mapping[str, Any], migration: Migration
) -> list[Problem]:
    """Strict errors left in the migrated repository (it must have none)."""
    from watcher.validation import Profile, check_value

    problems: list[Problem] = []
    for path, value in documents.items():
        if kind_of(path) is None:
            continue
        final = migration.documents.get(path, value)
        problems += [p for p in check_value(path, final, Profile.STRICT) if p.is_error]
    return problems


@register_operation
@dataclass
class MigrateRepository:
    """Rewrite every legacy document at the tip into the strict form, at once."""

    name: ClassVar[str] = "migrate"

    def apply(self, draft: Draft) -> str | Moot:
        broken = sorted(p for p in draft.base.problems if kind_of(p) is not None)
        if broken:
            raise WatcherError(
                f"cannot migrate: {', '.join(broken)} do not parse or break even the "
                "legacy schema",
                hint="repair them by hand first; `build-watcher validate --all "
                "--profile legacy` shows where",
            )
        migration = migrate_documents(draft.base.documents, draft.now)
        _refuse_leftovers(remaining_problems(draft.base.documents, migration))
        draft.result = migration
        if not migration.documents:
            return Moot("the repository is already in the strict form")
        for path, value in migration.documents.items():
            draft.write(path, value)
        files = len(migration.documents)
        return f"migrate {files} document(s) to the strict form"

    def to_json(self) -> dict[str, Any]:
        return {}


def _refuse_leftovers(problems: list[Problem]) -> None:
    if not problems:
        return
    first = problems[0]
    raise WatcherError(
        f"migration would leave {len(problems)} strict error(s), first "
        f"{first.describe()}; nothing was written",
        hint="repair those records by hand, then run `build-watcher migrate` again",
    )
