"""Named leases in `coordination/locks.json`: acquire, renew, release, take over.

A lock record keeps the seed's fields (`locked_by`, `locked_at`, `expires_at`)
plus `ttl_seconds` and an `epoch` that rises with every change of holder (taking
a free lock, taking over, releasing), so a holder can tell it lost the lease.

Takeover rule. Clocks differ between servers, so a peer never relies on another
server's `expires_at` alone. It takes over a lease held by someone else only after
it has itself watched the record stay exactly the same for the lease time plus the
configured margin (`ttl_seconds + lease_margin`): a live holder renews within its
lease, which changes the record. The record's `expires_at` must also have passed
on the taker's clock, as `watcher.clockscan` judges a lapse, so the two agree.
Watching is recorded in `<state>/lease-observations.json`: for each lock, a
digest of the record and when this host first saw it, on the system's monotonic
clock (shared by every process of one boot; a reboot starts the watch again).
Every sighting extends it: `locks` listing, every acquire attempt, and the daemon
when it calls `observe_locks` on each fresh snapshot.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from watcher.documents import Snapshot
from watcher.draft import Draft, Moot, operation_payload, register_operation
from watcher.errors import UsageError
from watcher.layout import LOCKS_PATH
from watcher.outbox import write_durably
from watcher.timestamps import format_timestamp, parse_timestamp

OBSERVATIONS_FILE = "lease-observations.json"
_LOCK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def locks_of(documents: Snapshot | Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Lock name to record (records that are not objects are skipped)."""
    found = documents.get(LOCKS_PATH) or {}
    locks = found.get("locks") if isinstance(found, Mapping) else None
    if not isinstance(locks, Mapping):
        return {}
    return {name: rec for name, rec in locks.items() if isinstance(rec, dict)}


def lock_ttl(record: Mapping[str, Any], default: float) -> float:
    """The holder's lease time: `ttl_seconds`, else `expires_at - locked_at`."""
    ttl = record.get("ttl_seconds")
    if isinstance(ttl, int | float) and not isinstance(ttl, bool) and ttl > 0:
        return float(ttl)
    start = parse_timestamp(record.get("locked_at"))
    end = parse_timestamp(record.get("expires_at"))
    if start and end and end > start:
        return (end - start).total_seconds()
    return default


def check_lock_name(name: str) -> None:
    if not _LOCK_NAME.match(name):
        raise UsageError(
            f"lock name {name!r} is not usable",
            hint="use letters, digits, '.', '_' or '-' (at most 64 characters)",
        )


class Observations:
    """How long this host has seen each lock record unchanged (monotonic clock)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / OBSERVATIONS_FILE
        self.boot = _boot_id()

    def seen_unchanged_for(self, name: str, record: Mapping[str, Any]) -> float:
        """Record a sighting of `record`; seconds since it was first seen as is."""
        table = self._load()
        digest = record_digest(record)
        now = time.monotonic()
        entry = table.get(name)
        if not entry or entry.get("digest") != digest or entry.get("boot") != self.boot:
            entry = {"digest": digest, "since": now, "boot": self.boot}
            table[name] = entry
            self._save(table)
        return max(0.0, now - float(entry["since"]))

    def _load(self) -> dict[str, Any]:
        try:
            table = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return table if isinstance(table, dict) else {}

    def _save(self, table: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_durably(self.path, json.dumps(table, indent=1, sort_keys=True) + "\n")


def observe_locks(state_dir: Path, documents: Snapshot | Mapping[str, Any]) -> None:
    """Extend this host's watch of every held lock (call on every fresh snapshot)."""
    observations = Observations(state_dir)
    for name, record in locks_of(documents).items():
        if record.get("locked_by"):
            observations.seen_unchanged_for(name, record)


def record_digest(record: Mapping[str, Any]) -> str:
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def _locks_document(draft: Draft) -> dict[str, Any]:
    document = draft.read(LOCKS_PATH, {"locks": {}})
    if not isinstance(document, dict):
        document = {"locks": {}}
    if not isinstance(document.get("locks"), dict):
        document["locks"] = {}
    return document


def _epoch(record: Mapping[str, Any]) -> int:
    epoch = record.get("epoch")
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else 0


@register_operation
@dataclass(frozen=True)
class AcquireLock:
    """Take a free lock, renew our own, or take over a lapsed one (see the rule).

    `draft.result` is the lock record as written, or as found when moot. Without
    `state_dir` nothing has been watched, so a held lock is never taken over.
    """

    name: ClassVar[str] = "lock-acquire"
    lock: str
    ttl: float
    margin: float = 30.0
    state_dir: str | None = None

    def __post_init__(self) -> None:
        check_lock_name(self.lock)
        if self.ttl <= 0:
            raise UsageError(f"lock time {self.ttl} must be positive seconds")

    def apply(self, draft: Draft) -> str | Moot:
        document = _locks_document(draft)
        record = document["locks"].get(self.lock)
        record = record if isinstance(record, dict) else {}
        holder = record.get("locked_by")
        if holder and holder != draft.node:
            refusal = self.takeover_refusal(record, draft.now)
            if refusal:
                draft.result = record
                return Moot(refusal)
        verb = "renew" if holder == draft.node else "take over" if holder else "acquire"
        if holder != draft.node:
            record["epoch"] = _epoch(record) + 1
            record.update(locked_by=draft.node, locked_at=draft.timestamp)
        expires = format_timestamp(draft.now + timedelta(seconds=self.ttl))
        record.update(expires_at=expires, ttl_seconds=self.ttl)
        document["locks"][self.lock] = record
        draft.result = dict(record)
        draft.write(LOCKS_PATH, document)
        return f"{verb} lock {self.lock} (epoch {record['epoch']})"

    def takeover_refusal(self, record: Mapping[str, Any], now: datetime) -> str | None:
        """Why a lock held by another server cannot be taken yet, or None."""
        required = lock_ttl(record, self.ttl) + self.margin
        seen = 0.0
        if self.state_dir is not None:
            seen = Observations(Path(self.state_dir)).seen_unchanged_for(
                self.lock, record
            )
        expires = parse_timestamp(record.get("expires_at"))
        if seen >= required and (expires is None or expires <= now):
            return None
        return (
            f"lock {self.lock} is held by {record.get('locked_by')} until "
            f"{record.get('expires_at')} (their clock); seen unchanged for "
            f"{seen:.0f} s of the required {required:.0f} s "
            f"(lease {required - self.margin:.0f} s + margin {self.margin:.0f} s)"
        )

    def to_json(self) -> dict[str, Any]:
        return operation_payload(self)


@register_operation
@dataclass(frozen=True)
class ReleaseLock:
    """Give up a lock we hold; moot when someone else holds it (or nobody)."""

    name: ClassVar[str] = "lock-release"
    lock: str

    def __post_init__(self) -> None:
        check_lock_name(self.lock)

    def apply(self, draft: Draft) -> str | Moot:
        document = _locks_document(draft)
        record = document["locks"].get(self.lock)
        holder = record.get("locked_by") if isinstance(record, dict) else None
        if not isinstance(record, dict) or holder != draft.node:
            return Moot(f"lock {self.lock} is held by {holder or 'nobody'}, not us")
        _clear(record)
        draft.result = dict(record)
        draft.write(LOCKS_PATH, document)
        return f"release lock {self.lock} (epoch {record['epoch']})"

    def to_json(self) -> dict[str, Any]:
        return {"lock": self.lock}


@register_operation
@dataclass(frozen=True)
class ExpireLock:
    """Free a lapsed lease of another server, under the takeover rule, fenced by
    the `epoch` the caller saw."""

    name: ClassVar[str] = "lock-expire"
    lock: str
    epoch: int
    ttl: float
    margin: float
    state_dir: str

    def apply(self, draft: Draft) -> str | Moot:
        document = _locks_document(draft)
        record = document["locks"].get(self.lock)
        if not isinstance(record, dict) or not record.get("locked_by"):
            return Moot(f"lock {self.lock} is free")
        if _epoch(record) != self.epoch:
            return Moot(f"lock {self.lock} changed holder (epoch {_epoch(record)})")
        acquire = AcquireLock(self.lock, self.ttl, self.margin, self.state_dir)
        refusal = acquire.takeover_refusal(record, draft.now)
        if refusal:
            return Moot(refusal)
        holder = record.get("locked_by")
        _clear(record)
        draft.write(LOCKS_PATH, document)
        return f"expire lock {self.lock} of {holder} (epoch {record['epoch']})"

    def to_json(self) -> dict[str, Any]:
        return operation_payload(self)


def _clear(record: dict[str, Any]) -> None:
    record.update(locked_by=None, locked_at=None, expires_at=None)
    record["epoch"] = _epoch(record) + 1
