"""The durable offline queue: operations waiting for the remote to come back.

One file per entry in `<state>/outbox/`, named by a time-ordered id so that a
directory listing is the queue's order. Each file is written whole (temporary file
in the same directory, fsync, rename, fsync of the directory), so a crash leaves
either the complete entry or none, and an entry is removed only after its
operation was pushed, found moot, or failed (failures are appended to
`<state>/outbox-failures.jsonl`, never dropped silently).

Applying entries in order across processes (the daemon and a command may both
flush) is serialised by an advisory lock on `<state>/outbox/.lock`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watcher.config import Config
from watcher.errors import WatcherError
from watcher.ids import new_ulid

FAILURE_LOG = "outbox-failures.jsonl"
LOCK_TIMEOUT = 600.0


@dataclass(frozen=True)
class Entry:
    """One queued operation: its registered name, defining module and arguments."""

    id: str
    queued_at: str
    node: str
    operation: str
    module: str
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "queued_at": self.queued_at,
            "node": self.node,
            "operation": self.operation,
            "module": self.module,
            "payload": self.payload,
        }


def outbox_path(config: Config) -> Path:
    return config.state_path / "outbox"


def enqueue(config: Config, entry_fields: dict[str, Any]) -> Entry:
    """Append an entry durably; it is on disk when this returns."""
    entry = Entry(id=new_ulid(), **entry_fields)
    directory = outbox_path(config)
    directory.mkdir(parents=True, exist_ok=True)
    write_durably(directory / f"{entry.id}.json", json.dumps(entry.to_json()) + "\n")
    return entry


def entries(config: Config) -> list[Entry]:
    """Queued entries, oldest first. An unreadable file is reported, not skipped."""
    directory = outbox_path(config)
    if not directory.is_dir():
        return []
    return [_read_entry(path) for path in sorted(directory.glob("*.json"))]


def has_entries(config: Config) -> bool:
    directory = outbox_path(config)
    return directory.is_dir() and any(directory.glob("*.json"))


def remove(config: Config, entry: Entry) -> None:
    (outbox_path(config) / f"{entry.id}.json").unlink(missing_ok=True)
    _fsync_directory(outbox_path(config))


def record_failure(config: Config, entry: Entry, status: str, reason: str) -> None:
    """Keep what happened to an entry that did not land, for a person to read."""
    line = {"entry": entry.to_json(), "status": status, "reason": reason}
    line["recorded_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    path = config.state_path / FAILURE_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def flush_lock(config: Config, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the queue for one flusher at a time (polled, with a deadline)."""
    directory = outbox_path(config)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise WatcherError(
                        f"the offline queue {directory} stayed locked for {timeout} s",
                        hint="another build-watcher process is flushing it; retry",
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def write_durably(path: Path, text: str) -> None:
    """Write `path` atomically: temporary file, fsync, rename, fsync the directory."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _read_entry(path: Path) -> Entry:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Entry(**data)
    except (OSError, ValueError, TypeError) as error:
        raise WatcherError(
            f"{path}: cannot read this queued operation: {error}",
            hint="inspect the file; move it out of the outbox directory to skip it",
        ) from error
