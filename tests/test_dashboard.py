"""The dashboard document, its commits on health change, the page and the commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Fleet, git
from watcher.config import Config
from watcher.dashboard import (
    DashboardUpdate,
    health_document,
    health_signature,
    overall_status,
)
from watcher.documents import Snapshot
from watcher.fleet import FleetView, compute_fleet
from watcher.fleetpage import render_page
from watcher.judgement import TIMESTAMP_CAVEAT, Judgement
from watcher.layout import DASHBOARD_PATH
from watcher.liveness import Liveness, PeerView
from watcher.main import main
from watcher.transaction import OutcomeStatus, transact
from watcher.validation import Profile, check_value

NOW = datetime(2025, 11, 5, 12, 0, 0, tzinfo=UTC)


def peer(name: str, state: Liveness) -> PeerView:
    since = NOW - timedelta(minutes=5)
    return PeerView(name, state, since, since, 300.0, -0.4, "2025-11-05T11:55:00Z")


def fleet_view(
    states: dict[str, Liveness], documents: dict[str, Any] | None = None
) -> FleetView:
    docs: dict[str, Any] = {
        f"{name}/status.json": {
            "server": name,
            "status": "building" if name == "build2" else "idle",
            "current_job": "job_b" if name == "build2" else None,
            "system": {"cpu_usage": 3.5, "memory_used_gb": 7.0, "disk_free_gb": 40.0},
        }
        for name in states
    }
    docs.update(documents or {})
    judgement = Judgement({n: peer(n, s) for n, s in states.items()}, "daemon")
    return compute_fleet(Snapshot("c0ffee", docs), {}, judgement, "build1", NOW)


@pytest.mark.parametrize(
    ("states", "overall"),
    [
        ({"build1": Liveness.ALIVE, "build2": Liveness.ALIVE}, "healthy"),
        ({"build1": Liveness.ALIVE, "build2": Liveness.STALE}, "degraded"),
        ({"build1": Liveness.STALE, "build2": Liveness.STALE}, "down"),
        ({"build1": Liveness.ALIVE, "build2": Liveness.UNKNOWN}, "healthy"),
        ({"build1": Liveness.UNKNOWN}, "unknown"),
        ({}, "unknown"),
    ],
)
def test_the_fleet_is_healthy_only_when_no_server_is_stale(
    states: dict[str, Liveness], overall: str
) -> None:
    assert overall_status(fleet_view(states).servers) == overall


def test_the_document_keeps_the_seed_shape_and_is_strictly_valid() -> None:
    view = fleet_view({"build1": Liveness.ALIVE, "build2": Liveness.STALE})

    document = health_document(view)

    assert document["overall_status"] == "degraded"
    assert {"timestamp", "servers", "jobs", "alerts", "aggregate"} <= set(document)
    stale = next(entry for entry in document["servers"] if entry["server"] == "build2")
    assert stale["healthy"] is False
    assert stale["liveness"] == "stale"
    assert stale["metrics"]["disk_free_gb"] == 40.0
    assert document["aggregate"]["servers_online"] == 1
    assert any("build2 is stale" in alert["message"] for alert in document["alerts"])
    assert "job_b" in document["alerts"][0]["message"]
    problems = check_value(DASHBOARD_PATH, document, Profile.STRICT)
    assert [p for p in problems if p.is_error] == []


def test_metrics_do_not_change_the_health_signature() -> None:
    before = health_document(fleet_view({"build1": Liveness.ALIVE}))
    after = json.loads(json.dumps(before))
    after["servers"][0]["metrics"]["cpu_usage"] = 99.0
    after["timestamp"] = "2025-11-05T13:00:00Z"

    assert health_signature(before) == health_signature(after)
    assert health_signature({"servers": {"build1": {}}}) is None


def test_the_dashboard_is_committed_only_when_health_changes(fleet: Fleet) -> None:
    config = Config(repo=fleet.clone("build1"), node="build1")
    healthy = health_document(fleet_view({"build1": Liveness.ALIVE}))
    busier = json.loads(json.dumps(healthy))
    busier["servers"][0]["metrics"]["cpu_usage"] = 99.0
    degraded = health_document(
        fleet_view({"build1": Liveness.ALIVE, "build2": Liveness.STALE})
    )

    outcomes = [
        transact(config, DashboardUpdate(document)).status
        for document in (healthy, busier, degraded, degraded)
    ]

    assert outcomes == [
        OutcomeStatus.DONE,
        OutcomeStatus.MOOT,
        OutcomeStatus.DONE,
        OutcomeStatus.MOOT,
    ]
    stored = json.loads(fleet.remote_file(DASHBOARD_PATH))
    assert stored["overall_status"] == "degraded"


def test_fields_the_product_does_not_know_are_kept(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")
    config = Config(repo=checkout, node="build1")
    history = [{"timestamp": "2025-11-07T03:00:01Z", "servers_online": 0}]
    old = {"overall_status": "healthy", "servers": {}, "history": history}
    (checkout / DASHBOARD_PATH).write_text(json.dumps(old))
    git("add", DASHBOARD_PATH, cwd=checkout)
    git("commit", "-q", "-m", "legacy dashboard", cwd=checkout)
    git("push", "-q", "origin", "main", cwd=checkout)

    transact(
        config, DashboardUpdate(health_document(fleet_view({"build1": Liveness.STALE})))
    )

    stored = json.loads(fleet.remote_file(DASHBOARD_PATH))
    assert stored["history"] == history
    assert stored["overall_status"] == "down"


def test_the_page_is_self_contained_and_escapes_repository_text() -> None:
    hostile = "<script>alert(1)</script>"
    message = {"id": "m1", "from": "build2", "to": "build1", "subject": hostile}
    view = fleet_view(
        {"build1": Liveness.ALIVE, "build2": Liveness.STALE},
        {"coordination/messages.json": {"messages": [message]}},
    )

    page = render_page(view)

    assert hostile not in page
    assert "&lt;script&gt;" in page
    assert "<script" not in page
    assert "Content-Security-Policy" in page
    assert "http://" not in page and "https://" not in page
    assert 'data-server="build2" data-liveness="stale"' in page
    assert 'id="overall">degraded<' in page


def test_the_page_states_the_caveat_when_liveness_comes_from_timestamps() -> None:
    view = fleet_view({"build1": Liveness.ALIVE})
    caveated = FleetView(
        **{
            **view.__dict__,
            "judgement": Judgement(
                view.judgement.peers, "timestamps", TIMESTAMP_CAVEAT
            ),
        }
    )

    assert "judged from heartbeat timestamps" in render_page(caveated)


@pytest.fixture
def checkout(fleet: Fleet) -> Path:
    return fleet.clone("build1")


def test_status_prints_json_with_the_same_data(
    checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--repo", str(checkout), "status", "--format", "json"]) == 0

    data = json.loads(capsys.readouterr().out)
    assert data["observer"] == "build1"
    assert data["liveness_source"] == "timestamps"
    assert data["caveat"]
    assert set(data) >= {"servers", "jobs", "locks", "unread"}


def test_status_text_is_plain_when_not_on_a_terminal(
    checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--repo", str(checkout), "status"]) == 0
    plain = capsys.readouterr().out

    assert main(["--repo", str(checkout), "status", "--color", "always"]) == 0
    coloured = capsys.readouterr().out

    assert "\033[" not in plain
    assert plain.startswith("Fleet unknown as seen by build1")
    assert "Unread messages for build1: 0" in plain
    assert "\033[" in coloured


def test_dashboard_writes_one_page(checkout: Path, tmp_path: Path) -> None:
    target = tmp_path / "site" / "index.html"
    target.parent.mkdir()

    assert main(["--repo", str(checkout), "dashboard", "--html", str(target)]) == 0

    page = target.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert [p.name for p in target.parent.iterdir()] == ["index.html"]


def test_dashboard_refuses_a_missing_directory(
    checkout: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "nowhere" / "index.html"

    assert main(["--repo", str(checkout), "dashboard", "--html", str(target)]) == 1
    assert "does not exist" in capsys.readouterr().err
