"""What one server has already been told: the last commit it processed and the
messages it has received.

Kept outside the repository, under the state directory, one file per server, so a
restarted daemon replays exactly the commits after `last_commit` and no message
is reported to it twice, even when the message was removed and added again or
the whole file rewritten in between.

The caller decides when progress is durable: saving after the events of a commit
were handled means a crash in between reports those events again on restart
(at least once); a clean stop and start reports each exactly once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from watcher.documents import Snapshot
from watcher.errors import WatcherError
from watcher.events import Event, EventKind
from watcher.layout import MESSAGES_PATH
from watcher.outbox import write_durably
from watcher.recordstate import is_addressed_to, message_key, records_of

FORMAT_VERSION = 1


def message_memory_key(record: Mapping[str, Any]) -> str:
    """The short, stored form of a message's identity (`message_key`)."""
    digest = hashlib.blake2b(message_key(record).encode("utf-8"), digest_size=10)
    return digest.hexdigest()


def progress_path(state_dir: Path, node: str | None) -> Path:
    return state_dir / f"progress-{node or 'fleet'}.json"


@dataclass
class Progress:
    """One server's memory; `path=None` keeps it in memory only (`log`, tests)."""

    node: str | None
    last_commit: str | None = None
    seen_messages: set[str] = field(default_factory=set)
    path: Path | None = None

    @classmethod
    def load(cls, path: Path, node: str | None = None) -> Progress:
        """The saved progress at `path`, or a fresh one when there is none yet."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(node, path=path)
        except (OSError, ValueError) as error:
            raise WatcherError(
                f"{path}: cannot read this server's progress: {error}",
                hint="delete the file to start over from the current tip "
                "(messages already in the repository will not be reported again)",
            ) from error
        return cls._from_json(data, node, path)

    @classmethod
    def _from_json(cls, data: Any, node: str | None, path: Path) -> Progress:
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise WatcherError(
                f"{path}: not a progress file of version {FORMAT_VERSION}",
                hint="delete the file to start over from the current tip",
            )
        seen = {str(key) for key in data.get("seen_messages", [])}
        return cls(node or data.get("node"), data.get("last_commit"), seen, path)

    def start_at(self, snapshot: Snapshot) -> None:
        """Begin at `snapshot` as if everything in it had been reported already.

        For a server with no progress yet: the messages already there are old news.
        """
        records = records_of(snapshot.get(MESSAGES_PATH), "messages")
        self.seen_messages.update(
            message_memory_key(record)
            for record in records
            if is_addressed_to(record, self.node)
        )
        self.last_commit = snapshot.commit

    def admit(self, events: Iterable[Event]) -> list[Event]:
        """The events minus messages already received; those admitted are remembered."""
        admitted = []
        for event in events:
            if event.kind is EventKind.MESSAGE_RECEIVED and event.record is not None:
                key = message_memory_key(event.record)
                if key in self.seen_messages:
                    logger.debug("message seen before", message=event.subject)
                    continue
                self.seen_messages.add(key)
            admitted.append(event)
        return admitted

    def record(self, commit: str | None, events: Iterable[Event] = ()) -> None:
        """Mark `commit` processed, remembering any messages among `events`."""
        for event in events:
            if event.kind is EventKind.MESSAGE_RECEIVED and event.record is not None:
                self.seen_messages.add(message_memory_key(event.record))
        self.last_commit = commit

    def save(self) -> None:
        """Write the progress atomically (no-op for an in-memory progress)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_durably(self.path, json.dumps(self.to_json(), indent=1) + "\n")

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "node": self.node,
            "last_commit": self.last_commit,
            "seen_messages": sorted(self.seen_messages),
        }
