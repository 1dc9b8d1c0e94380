"""A server's status and the main copy of its heartbeat: written on change only."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Fleet, git
from watcher.config import Config, JobType
from watcher.documents import Snapshot, read_snapshot
from watcher.draft import rebuild_operation
from watcher.serverstatus import (
    MAIN_HEARTBEAT_INTERVAL,
    HeartbeatPublisher,
    MainHeartbeat,
    StatusUpdate,
    capabilities,
    is_main_copy_due,
    system_metrics,
)
from watcher.transaction import OutcomeStatus, transact

START = datetime(2025, 11, 5, 12, 0, 0, tzinfo=UTC)
SYSTEM = {"cpu_usage": 1.5, "memory_used_gb": 7.2, "disk_free_gb": 25.0}


@pytest.fixture
def config(fleet: Fleet) -> Config:
    return Config(repo=fleet.clone("build1"), node="build1")


def remote_json(fleet: Fleet, path: str) -> dict:
    return json.loads(fleet.remote_file(path))


def test_status_keeps_the_seed_shape(fleet: Fleet, config: Config) -> None:
    update = StatusUpdate(
        "build1", "idle", system=SYSTEM, capabilities=capabilities(config, None)
    )

    outcome = transact(config, update)

    assert outcome.status is OutcomeStatus.DONE
    status = remote_json(fleet, "build1/status.json")
    assert status["server"] == "build1"
    assert status["status"] == "idle"
    assert status["current_job"] is None
    assert status["system"] == SYSTEM
    assert set(status["capabilities"]) >= {"job_types", "labels", "cores", "memory_gb"}
    assert status["timestamp"].endswith("Z")


def test_capabilities_list_the_job_types_this_server_would_claim(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configured = replace(config, job_types={"make": JobType("make", ("make",))})
    tools = tmp_path / "bin"
    tools.mkdir()
    maven = tools / "mvn"
    maven.write_text("#!/bin/sh\n")
    maven.chmod(0o755)
    monkeypatch.setenv("PATH", str(tools))
    shared = {"cloudstack": {"repository": "https://github.com/apache/cloudstack"}}

    assert capabilities(configured, None)["job_types"] == ["make"]
    assert capabilities(configured, shared)["job_types"] == ["build", "make"]
    assert capabilities(config, None)["job_types"] == []


def test_a_status_change_writes_status_and_main_heartbeat_in_one_commit(
    fleet: Fleet, config: Config
) -> None:
    before = len(fleet.remote_log())

    transact(config, StatusUpdate("build1", "building", "job_1", system=SYSTEM))

    assert len(fleet.remote_log()) == before + 1
    beat = remote_json(fleet, "build1/heartbeat.json")
    assert beat["status"] == "building"
    assert beat["current_job"] == "job_1"
    assert beat["healthy"] is True


def test_an_unchanged_status_is_moot_even_when_metrics_move(
    fleet: Fleet, config: Config
) -> None:
    transact(config, StatusUpdate("build1", "idle", system=SYSTEM))
    before = fleet.remote_log()

    busier = {**SYSTEM, "cpu_usage": 97.0}
    outcome = transact(config, StatusUpdate("build1", "idle", system=busier))

    assert outcome.status is OutcomeStatus.MOOT
    assert fleet.remote_log() == before


def test_fields_the_product_does_not_know_are_kept(
    fleet: Fleet, config: Config
) -> None:
    legacy = {"server_id": "build1", "ip": "192.0.2.175", "manager": "Codex"}
    path = config.repo / "build1" / "status.json"
    path.parent.mkdir()
    path.write_text(json.dumps(legacy))
    git("add", "build1/status.json", cwd=config.repo)
    git("commit", "-q", "-m", "legacy status", cwd=config.repo)
    git("push", "-q", "origin", "main", cwd=config.repo)

    transact(config, StatusUpdate("build1", "offline"))

    status = remote_json(fleet, "build1/status.json")
    assert status["ip"] == "192.0.2.175"
    assert status["manager"] == "Codex"
    assert status["server"] == "build1"
    assert "server_id" not in status
    assert remote_json(fleet, "build1/heartbeat.json")["healthy"] is False


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="not one of"):
        StatusUpdate("build1", "sleeping")


def test_operations_survive_the_offline_queue_round_trip() -> None:
    update = StatusUpdate("build1", "success", None, {"id": "job_1"}, SYSTEM)
    refresh = MainHeartbeat("build1", {"server": "build1", "timestamp": "x"})

    for operation in (update, refresh):
        payload = json.loads(json.dumps(operation.to_json()))
        rebuilt = rebuild_operation(operation.name, "watcher.serverstatus", payload)
        assert rebuilt == operation


def stamp(minutes: float, status: str = "idle") -> dict:
    moment = START + timedelta(minutes=minutes)
    return {
        "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "status": status,
        "current_job": None,
        "healthy": True,
    }


@pytest.mark.parametrize(
    ("existing", "new", "due"),
    [
        (None, stamp(0), True),
        (stamp(0), stamp(29), False),
        (stamp(0), stamp(30), True),
        (stamp(0), stamp(1, "building"), True),
        (stamp(10), stamp(0), True),
        ({"timestamp": "$(date)"}, stamp(0), True),
    ],
)
def test_the_main_copy_is_due_on_change_or_after_half_an_hour(
    existing: dict | None, new: dict, due: bool
) -> None:
    assert is_main_copy_due(existing, new, MAIN_HEARTBEAT_INTERVAL) is due


def test_system_metrics_come_from_this_host(tmp_path: Path) -> None:
    metrics = system_metrics(tmp_path)

    assert set(metrics) == {"cpu_usage", "memory_used_gb", "disk_free_gb"}
    assert metrics["disk_free_gb"] > 0


class SimulatedClock:
    def __init__(self) -> None:
        self.seconds = 0.0

    def monotonic(self) -> float:
        return self.seconds

    def wall(self) -> datetime:
        return START + timedelta(seconds=self.seconds)


def test_beats_refresh_main_only_every_half_hour(fleet: Fleet, config: Config) -> None:
    clock = SimulatedClock()
    tracking = f"refs/remotes/{config.remote}/{config.branch}"
    state = {"snapshot": Snapshot(None)}

    def snapshot() -> Snapshot:
        state["snapshot"] = read_snapshot(config.repo, tracking, state["snapshot"])
        return state["snapshot"]

    publisher = HeartbeatPublisher(
        config,
        lambda operation: transact(config, operation),
        snapshot,
        monotonic=clock.monotonic,
        wall=clock.wall,
        system=lambda: SYSTEM,
    )
    before = len(fleet.remote_log())

    for _ in range(95):
        assert publisher.beat() is not None
        clock.seconds += 60

    # Beats at 0, 30, 60 and 90 minutes: four main copies in 95 minutes.
    assert len(fleet.remote_log()) - before == 4
    assert len(fleet.remote_log("heartbeat/build1")) == 1
    branch = json.loads(fleet.remote_file("build1/heartbeat.json", "heartbeat/build1"))
    assert branch["sequence"] == 95
