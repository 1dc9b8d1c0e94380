"""A server's own documents: `status.json` and the main copy of `heartbeat.json`,
both written only when something a person cares about changes, and the beat that
replaces the heartbeat branch (`HeartbeatPublisher`).

`status.json` keeps the seed's shape (`server`, `timestamp`, `status`,
`current_job`, `last_build`, `system`, `capabilities`, and any field the product
does not know, such as `ip` or `manager`). It is rewritten when the status, the
current job, the last build or the capabilities change; system metrics ride along
with those writes and never cause one by themselves.

The main branch's `heartbeat.json` is written with every status change and
otherwise at most once every `MAIN_HEARTBEAT_INTERVAL`, so tools that read only
the main branch still see a recent one; liveness itself is judged from the
heartbeat branches (`watcher.heartbeat`), which cost the main history nothing.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import psutil
from loguru import logger

from watcher.config import Config
from watcher.documents import Snapshot
from watcher.draft import Draft, Moot, Operation, operation_payload, register_operation
from watcher.heartbeat import commit_heartbeat, heartbeat_document, push_heartbeat
from watcher.layout import heartbeat_path, status_path
from watcher.recipes import runnable_types
from watcher.remoterefs import RemoteAccessDenied, RemoteUnreachable
from watcher.timestamps import format_timestamp, now_utc, parse_timestamp
from watcher.transaction import Outcome

STATUSES = ("idle", "building", "failed", "success", "offline")
RESTING_STATUSES = ("idle", "success", "failed")
MAIN_HEARTBEAT_INTERVAL = 1800.0
_GB = 1024**3
# Fields that make a status write worth a commit; `system` and `timestamp` do not.
_MEANINGFUL = ("server", "status", "current_job", "last_build", "capabilities")
_BRANCH_ONLY = ("sequence", "interval_seconds", "started_at")


def system_metrics(path: Path) -> dict[str, float]:
    """CPU use since the last call, memory in use and free disk where `path` lives."""
    memory = psutil.virtual_memory()
    disk = shutil.disk_usage(path if path.exists() else Path("/"))
    return {
        "cpu_usage": round(psutil.cpu_percent(interval=None), 1),
        "memory_used_gb": round((memory.total - memory.available) / _GB, 1),
        "disk_free_gb": round(disk.free / _GB, 1),
    }


def host_uptime() -> float:
    """Seconds since the host booted, as the seed's `uptime_seconds` counted."""
    return max(0.0, time.time() - psutil.boot_time())


def capabilities(
    config: Config, build_config: Mapping[str, Any] | None
) -> dict[str, Any]:
    """What this server can run: the job types it would claim under the shared
    build configuration, its labels, cores and memory."""
    return {
        "job_types": sorted(runnable_types(config, build_config)),
        "labels": list(config.labels),
        "cores": psutil.cpu_count() or 1,
        "memory_gb": round(psutil.virtual_memory().total / _GB),
    }


@register_operation
@dataclass(frozen=True)
class StatusUpdate:
    """Set this server's status; moot when nothing meaningful changes.

    `last_build` None keeps the recorded one. With `keep_resting`, a recorded
    resting status (idle, success, failed: the last build's result) is kept, as a
    daemon that starts should. The main copy of the heartbeat is rewritten in the
    same commit, so a status change costs one commit, not two.
    """

    name: ClassVar[str] = "server-status"
    server: str
    status: str
    current_job: str | None = None
    last_build: dict[str, Any] | None = None
    system: dict[str, float] = field(default_factory=dict)
    capabilities: dict[str, Any] | None = None
    keep_resting: bool = False

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")

    def apply(self, draft: Draft) -> str | Moot:
        existing = draft.read(status_path(self.server))
        existing = existing if isinstance(existing, dict) else {}
        updated = self.updated(existing)
        if _meaningful(updated) == _meaningful(existing):
            return Moot(f"status of {self.server} unchanged ({self.status})")

        updated["timestamp"] = draft.timestamp
        draft.write(status_path(self.server), updated)
        beat = main_heartbeat(updated, host_uptime())
        _write_main_heartbeat(draft, self.server, beat)
        job = f" {self.current_job}" if self.current_job else ""
        return f"status {updated['status']}{job}"

    def updated(self, existing: Mapping[str, Any]) -> dict[str, Any]:
        """The status document with this update laid over the recorded one."""
        updated = dict(existing)
        updated.pop("server_id", None)  # the legacy spelling of `server`
        updated["server"] = self.server
        resting = self.keep_resting and existing.get("status") in RESTING_STATUSES
        updated["status"] = existing["status"] if resting else self.status
        updated["current_job"] = self.current_job
        if self.last_build is not None:
            updated["last_build"] = self.last_build
        if self.system:
            updated["system"] = self.system
        if self.capabilities is not None:
            known = existing.get("capabilities")
            merged = dict(known) if isinstance(known, dict) else {}
            updated["capabilities"] = {**merged, **self.capabilities}
        return updated

    def to_json(self) -> dict[str, Any]:
        return operation_payload(self)


@register_operation
@dataclass(frozen=True)
class MainHeartbeat:
    """Refresh the main branch's copy of this server's heartbeat when it is due."""

    name: ClassVar[str] = "main-heartbeat"
    server: str
    document: dict[str, Any]
    min_interval: float = MAIN_HEARTBEAT_INTERVAL

    def apply(self, draft: Draft) -> str | Moot:
        existing = draft.read(heartbeat_path(self.server))
        if not is_main_copy_due(existing, self.document, self.min_interval):
            return Moot("the main branch's heartbeat is recent and says the same")
        _write_main_heartbeat(draft, self.server, self.document)
        return "heartbeat"

    def to_json(self) -> dict[str, Any]:
        return operation_payload(self)


def main_heartbeat(status: Mapping[str, Any], uptime: float) -> dict[str, Any]:
    """The main copy of the heartbeat that goes with a status document."""
    return {
        "server": status.get("server"),
        "timestamp": status.get("timestamp"),
        "uptime_seconds": int(uptime),
        "healthy": status.get("status") != "offline",
        "status": status.get("status"),
        "current_job": status.get("current_job"),
        "system": status.get("system", {}),
    }


def is_main_copy_due(
    existing: Any, document: Mapping[str, Any], min_interval: float
) -> bool:
    """Due when the status differs or the copy is `min_interval` old.

    Both timestamps come from this server's own clock, so comparing them is fair;
    a copy stamped in the future (the clock was set back) is replaced at once.
    """
    if not isinstance(existing, dict):
        return True
    for key in ("status", "current_job", "healthy"):
        if existing.get(key) != document.get(key):
            return True
    old = parse_timestamp(existing.get("timestamp"))
    new = parse_timestamp(document.get("timestamp"))
    if old is None or new is None:
        return True
    age = (new - old).total_seconds()
    return age < 0 or age >= min_interval


def _write_main_heartbeat(
    draft: Draft, server: str, document: Mapping[str, Any]
) -> None:
    existing = draft.read(heartbeat_path(server))
    merged = dict(existing) if isinstance(existing, dict) else {}
    merged.pop("server_id", None)
    merged.update({k: v for k, v in document.items() if k not in _BRANCH_ONLY})
    draft.write(heartbeat_path(server), merged)


def _meaningful(document: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(document.get(key) for key in _MEANINGFUL)


class HeartbeatPublisher:
    """One beat: replace the heartbeat branch, and refresh the main copy when due.

    The clocks are injected so a simulated day of beats can run in seconds.
    """

    def __init__(
        self,
        config: Config,
        transact: Callable[[Operation], Outcome],
        snapshot: Callable[[], Snapshot],
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = now_utc,
        system: Callable[[], dict[str, float]] | None = None,
    ) -> None:
        self.config = config
        self.node = config.require_node()
        self.transact = transact
        self.snapshot = snapshot
        self.monotonic = monotonic
        self.wall = wall
        self.system = system or (lambda: system_metrics(config.repo))
        self.started_at = format_timestamp(wall())
        self.sequence = 0
        self.reachable = True
        self.latest: dict[str, Any] | None = None  # the last document published

    def beat(self) -> str | None:
        """Publish one heartbeat and refresh the main copy when it is due."""
        commit = self.publish()
        if commit is not None and self.latest is not None:
            self.refresh_main(self.latest)
        return commit

    def publish(self) -> str | None:
        """Replace the heartbeat branch; the commit pushed, or None when the remote
        is away. Writes nothing on the main branch, so the daemon can call it from
        a thread of its own (it reads only the snapshot, replaced whole)."""
        document = self.document()
        commit = commit_heartbeat(self.config.repo, self.node, document)
        try:
            push_heartbeat(self.config.repo, self.config.remote, self.node, commit)
        except (RemoteUnreachable, RemoteAccessDenied) as error:
            if self.reachable:
                logger.warning("heartbeat not published: {why}", why=error.message)
            self.reachable = False
            return None
        if not self.reachable:
            logger.info("heartbeats are published again")
        self.reachable = True
        self.latest = document
        return commit

    def document(self) -> dict[str, Any]:
        self.sequence += 1
        status = self.snapshot().get(status_path(self.node))
        status = status if isinstance(status, dict) else {}
        extra = {
            "status": status.get("status", "idle"),
            "current_job": status.get("current_job"),
            "interval_seconds": self.config.heartbeat_interval,
            "started_at": self.started_at,
            "system": self.system(),
        }
        moment = self.wall()
        return heartbeat_document(
            self.node, moment, self.sequence, host_uptime(), extra
        )

    def refresh_main(self, document: Mapping[str, Any]) -> Outcome | None:
        """Write the main copy only when due; most beats cost no transaction."""
        current = self.snapshot().get(heartbeat_path(self.node))
        if not is_main_copy_due(current, document, MAIN_HEARTBEAT_INTERVAL):
            return None
        return self.transact(MainHeartbeat(self.node, dict(document)))
