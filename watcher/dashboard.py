"""The fleet at a glance as `shared/health_dashboard.json`, committed on health change.

The JSON document keeps the seed's shape (`timestamp`, `overall_status`,
`servers[]` with `healthy` and `metrics`, `jobs`, `alerts`, `aggregate`) and is
computed from observed liveness: the fleet is "healthy" only when no server is
stale. It is committed only when the health changes (the overall status, or a
server's liveness or health), never for a metric; fields the product does not
know, such as an old `history`, are kept untouched.

The page is rendered by `watcher.fleetpage`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from watcher.draft import Draft, Moot, operation_payload, register_operation
from watcher.fleet import FleetView, JobRow, ServerRow
from watcher.layout import DASHBOARD_PATH
from watcher.liveness import Liveness
from watcher.timestamps import format_timestamp, parse_timestamp

HEALTHY = "healthy"
DEGRADED = "degraded"
DOWN = "down"
UNKNOWN = "unknown"


def overall_status(servers: list[ServerRow]) -> str:
    """Healthy only when something is alive and nothing is stale."""
    alive = sum(row.liveness is Liveness.ALIVE for row in servers)
    stale = sum(row.liveness is Liveness.STALE for row in servers)
    if alive == 0:
        return DOWN if stale else UNKNOWN
    return DEGRADED if stale else HEALTHY


def is_healthy(row: ServerRow) -> bool:
    return row.liveness is Liveness.ALIVE and row.status != "offline"


def health_document(fleet: FleetView) -> dict[str, Any]:
    """The dashboard document for this fleet view."""
    now = format_timestamp(fleet.generated_at)
    return {
        "timestamp": now,
        "updated_at": now,
        "overall_status": overall_status(fleet.servers),
        "observer": fleet.observer,
        "servers": [_server_entry(row) for row in fleet.servers],
        "jobs": _job_counts(fleet),
        "alerts": alerts(fleet),
        "aggregate": _aggregate(fleet),
    }


def _server_entry(row: ServerRow) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "server": row.server,
        "status": row.status or "unknown",
        **{key: value for key, value in row.details.items() if isinstance(value, str)},
        "healthy": is_healthy(row),
        "liveness": row.liveness.value,
        "since": format_timestamp(row.since) if row.since else None,
        "last_heartbeat": _strict(row.last_heartbeat),
    }
    if row.system:
        entry["metrics"] = {
            key: value
            for key, value in row.system.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
    return entry


def alerts(fleet: FleetView) -> list[dict[str, str]]:
    """What a person should look at: stale servers, unknown ones, broken files."""
    found = []
    for row in fleet.servers:
        if row.liveness is Liveness.STALE:
            job = f"; it holds {row.current_job}" if row.current_job else ""
            message = f"{row.server} is stale: no heartbeat change seen{job}"
            found.append(
                {"severity": "critical", "server": row.server, "message": message}
            )
        elif row.liveness is Liveness.UNKNOWN:
            message = f"{row.server} has shown no heartbeat yet"
            found.append(
                {"severity": "warning", "server": row.server, "message": message}
            )
    for path, problem in sorted(fleet.problems.items()):
        found.append({"severity": "warning", "path": path, "message": problem})
    return found


def _job_counts(fleet: FleetView) -> dict[str, int]:
    today = fleet.generated_at.date()
    return {
        "queued": len(fleet.jobs.get("queued", [])),
        "running": len(fleet.jobs.get("running", [])),
        "completed_today": _finished_on(fleet.jobs.get("completed", []), today),
        "failed_today": _finished_on(fleet.jobs.get("failed", []), today),
    }


def _finished_on(rows: list[JobRow], day: Any) -> int:
    moments = (parse_timestamp(row.completed_at) for row in rows)
    return sum(1 for moment in moments if moment is not None and moment.date() == day)


def _aggregate(fleet: FleetView) -> dict[str, Any]:
    completed = len(fleet.jobs.get("completed", []))
    failed = len(fleet.jobs.get("failed", []))
    finished = completed + failed
    return {
        "servers_total": len(fleet.servers),
        "servers_online": len(fleet.servers_in(Liveness.ALIVE)),
        "servers_stale": len(fleet.servers_in(Liveness.STALE)),
        "servers_unknown": len(fleet.servers_in(Liveness.UNKNOWN)),
        "total_builds": finished,
        "successful_builds": completed,
        "failed_builds": failed,
        "success_rate": round(100.0 * completed / finished, 2) if finished else None,
        "queued_jobs": len(fleet.jobs.get("queued", [])),
        "running_jobs": len(fleet.jobs.get("running", [])),
    }


def health_signature(document: Any) -> tuple[Any, ...] | None:
    """What a change of health means: the overall status and each server's state."""
    if not isinstance(document, Mapping) or not isinstance(
        document.get("servers"), list
    ):
        return None
    servers = tuple(
        (entry.get("server"), entry.get("liveness"), entry.get("healthy"))
        for entry in document["servers"]
        if isinstance(entry, Mapping)
    )
    return (document.get("overall_status"), servers)


@register_operation
@dataclass(frozen=True)
class DashboardUpdate:
    """Commit the dashboard when its health differs from the one at the tip."""

    name: ClassVar[str] = "health-dashboard"
    document: dict[str, Any]

    def apply(self, draft: Draft) -> str | Moot:
        existing = draft.read(DASHBOARD_PATH)
        if health_signature(existing) == health_signature(self.document):
            return Moot("the fleet's health is unchanged")
        kept = dict(existing) if isinstance(existing, dict) else {}
        draft.write(DASHBOARD_PATH, {**kept, **self.document})
        return f"fleet {self.document.get('overall_status')}"

    def to_json(self) -> dict[str, Any]:
        return operation_payload(self)


def _strict(value: str | None) -> str | None:
    moment = parse_timestamp(value)
    return format_timestamp(moment) if moment else None
