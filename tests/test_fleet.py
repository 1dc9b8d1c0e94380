"""The fleet view: servers judged alive/stale/unknown, jobs, locks and mail."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Fleet, git
from watcher.config import Config
from watcher.documents import dump_document
from watcher.fleet import commit_events, load_fleet
from watcher.heartbeat import (
    commit_heartbeat,
    fetch_heartbeats,
    heartbeat_document,
    push_heartbeat,
)
from watcher.judgement import (
    DAEMON,
    TIMESTAMPS,
    VIEW_FILE,
    SavedView,
    judge_saved,
    judge_timestamps,
    load_view,
    save_view,
)
from watcher.liveness import Liveness, PeerView

NOW = datetime(2025, 11, 5, 12, 0, 0, tzinfo=UTC)
ALLOWANCE = 180.0


def publish(checkout: Path, documents: dict[str, Any], message: str = "seed") -> None:
    """Commit documents straight to main and push, as a legacy script would."""
    for path, value in documents.items():
        target = checkout / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(dump_document(value))
    git("add", "-A", cwd=checkout)
    git("commit", "-q", "-m", message, cwd=checkout)
    git("push", "-q", "origin", "main", cwd=checkout)


def beat(checkout: Path, server: str, stamp: datetime, sequence: int = 1) -> None:
    document = heartbeat_document(server, stamp, sequence, 0.0, {"status": "idle"})
    push_heartbeat(
        checkout, "origin", server, commit_heartbeat(checkout, server, document)
    )


def status(server: str, state: str, job: str | None = None) -> dict[str, Any]:
    return {
        "server": server,
        "timestamp": "2025-11-05T11:00:00Z",
        "status": state,
        "current_job": job,
        "ip": "192.0.2.10",
    }


JOBS = {
    "jobs": [
        {"id": "job_a", "type": "build", "status": "queued", "priority": 2},
        {"id": "job_b", "type": "build", "status": "running", "assigned_to": "build2"},
        {"id": "job_c", "type": "package", "status": "completed"},
    ]
}
LOCKS = {
    "locks": {
        "maven": {
            "locked_by": "build2",
            "locked_at": "2025-11-05T11:50:00Z",
            "expires_at": "2025-11-05T11:55:00Z",
        },
        "free": {"locked_by": None},
    }
}
MESSAGES = {
    "messages": [
        {"id": "m1", "from": "build2", "to": "build1", "subject": "hi", "body": "x"},
        {
            "id": "m2",
            "from": "build2",
            "to": "all",
            "subject": "all",
            "read_by": ["build1"],
        },
        {"id": "m3", "from": "build1", "to": "build2", "subject": "mine"},
    ]
}


@pytest.fixture
def observer(fleet: Fleet) -> Path:
    checkout = fleet.clone("build1")
    publish(
        checkout,
        {
            "build1/status.json": status("build1", "idle"),
            "build2/status.json": status("build2", "building", "job_b"),
            "build3/status.json": status("build3", "idle"),
            "coordination/jobs.json": JOBS,
            "coordination/locks.json": LOCKS,
            "coordination/messages.json": MESSAGES,
        },
    )
    return checkout


def test_the_fleet_lists_servers_jobs_locks_and_my_unread_mail(observer: Path) -> None:
    beat(observer, "build2", NOW - timedelta(seconds=30))
    config = Config(repo=observer, node="build1", stale_after=ALLOWANCE)

    view = load_fleet(config, NOW)

    by_name = {row.server: row for row in view.servers}
    assert set(by_name) == {"build1", "build2", "build3"}
    assert by_name["build2"].liveness is Liveness.ALIVE
    assert by_name["build2"].current_job == "job_b"
    assert by_name["build2"].details == {"ip": "192.0.2.10"}
    assert by_name["build3"].liveness is Liveness.STALE  # only an old status stamp
    assert {state: [j.id for j in jobs] for state, jobs in view.jobs.items()} == {
        "queued": ["job_a"],
        "running": ["job_b"],
        "completed": ["job_c"],
    }
    assert [(lock.name, lock.holder, lock.is_expired) for lock in view.locks] == [
        ("maven", "build2", True)
    ]
    assert [message.id for message in view.unread] == ["m1"]
    assert view.judgement.source == TIMESTAMPS
    assert view.judgement.caveat


def test_an_invalid_document_is_reported_not_shown(observer: Path) -> None:
    broken = {"jobs": [*JOBS["jobs"], "not a job"]}
    publish(observer, {"coordination/jobs.json": broken}, "break the queue")

    view = load_fleet(Config(repo=observer, node="build1"), NOW)

    assert "coordination/jobs.json" in view.problems
    assert view.jobs == {}


def test_the_fleet_view_serialises_to_json(observer: Path) -> None:
    config = Config(repo=observer, node="build1")

    data = json.loads(json.dumps(load_fleet(config, NOW).to_json()))

    assert data["observer"] == "build1"
    assert {row["server"] for row in data["servers"]} == {"build1", "build2", "build3"}
    assert data["unread"][0]["subject"] == "hi"


def test_a_fresh_daemon_view_is_preferred_to_timestamps(observer: Path) -> None:
    """The peer's stamp is an hour ahead; the daemon saw it go silent: stale."""
    beat(observer, "build2", NOW + timedelta(hours=1))
    config = Config(repo=observer, node="build1", stale_after=ALLOWANCE)
    silent = PeerView(
        "build2", Liveness.ALIVE, NOW, NOW - timedelta(seconds=170), 170.0, 3600.0, None
    )
    saved = _saved(config, {"build2": silent}, written_at=NOW - timedelta(seconds=20))

    view = load_fleet(config, NOW)

    by_name = {row.server: row for row in view.servers}
    assert saved is not None
    assert view.judgement.source == DAEMON
    assert view.judgement.caveat is None
    assert by_name["build2"].liveness is Liveness.STALE
    assert by_name["build1"].liveness is Liveness.ALIVE


def _saved(
    config: Config, peers: dict[str, PeerView], written_at: datetime
) -> SavedView | None:
    path = config.state_path / VIEW_FILE
    save_view(path, SavedView("build1", written_at, config.stale_after, peers))
    return load_view(path)


def test_saved_ages_are_carried_forward_and_judged_again() -> None:
    alive = PeerView("build2", Liveness.ALIVE, NOW, NOW, 10.0, None, None)
    saved = SavedView("build1", NOW, ALLOWANCE, {"build2": alive})

    soon = judge_saved(saved, NOW + timedelta(seconds=60), ALLOWANCE, "build1")
    later = judge_saved(saved, NOW + timedelta(seconds=200), ALLOWANCE, "build1")

    assert soon.peers["build2"].state is Liveness.ALIVE
    assert soon.peers["build2"].age_seconds == 70
    assert later.peers["build2"].state is Liveness.STALE
    assert later.peers["build2"].since == NOW + timedelta(seconds=ALLOWANCE)
    assert later.peers["build1"].state is Liveness.ALIVE


@pytest.mark.parametrize(
    ("stamp", "offset", "state"),
    [
        (NOW - timedelta(seconds=60), 0.0, Liveness.ALIVE),
        (NOW - timedelta(seconds=600), 0.0, Liveness.STALE),
        (NOW + timedelta(hours=1), 0.0, Liveness.UNKNOWN),
        (NOW + timedelta(hours=1) - timedelta(seconds=60), 3600.0, Liveness.ALIVE),
        (NOW - timedelta(hours=1), -3600.0, Liveness.ALIVE),
    ],
)
def test_timestamps_judge_with_known_offsets(
    stamp: datetime, offset: float, state: Liveness
) -> None:
    judged = judge_timestamps({"build2": stamp}, NOW, ALLOWANCE, {"build2": offset})

    assert judged.peers["build2"].state is state
    assert judged.caveat


def test_an_unreadable_saved_view_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / VIEW_FILE
    path.write_text("{not json")

    assert load_view(path) is None
    assert load_view(tmp_path / "missing.json") is None


def test_heartbeats_seen_only_by_fetch_are_judged(fleet: Fleet, observer: Path) -> None:
    peer = fleet.clone("build2")
    beat(peer, "build2", NOW - timedelta(seconds=5))
    fetch_heartbeats(observer, "origin")

    view = load_fleet(Config(repo=observer, node="build1"), NOW)

    row = next(row for row in view.servers if row.server == "build2")
    assert row.liveness is Liveness.ALIVE
    assert row.last_heartbeat == "2025-11-05T11:59:55Z"


def test_recent_commits_replay_into_events(observer: Path) -> None:
    jobs = {
        "jobs": [
            *JOBS["jobs"][:3],
            {"id": "job_d", "type": "build", "status": "queued"},
        ]
    }
    publish(observer, {"coordination/jobs.json": jobs}, "queue job_d")
    head = git("rev-parse", "HEAD", cwd=observer).strip()

    rows = commit_events(observer, head, 1)

    assert [(row.kind, row.subject) for row in rows] == [("job.queued", "job_d")]
    assert rows[0].commit == head


def test_the_real_history_gives_a_fleet_without_crashing(corpus_repo: Path) -> None:
    config = Config(repo=corpus_repo, node="build1")

    view = load_fleet(config, NOW + timedelta(days=3), events=5)

    assert [row.server for row in view.servers] == [
        "build1",
        "build2",
        "build3",
        "build4",
    ]
    assert all(row.liveness is not Liveness.ALIVE for row in view.servers)
    assert view.jobs


def test_a_watch_view_survives_saving_and_loading(tmp_path: Path) -> None:
    from watcher.heartbeat import Heartbeat
    from watcher.judgement import view_of
    from watcher.liveness import PeerWatch

    clock = {"seconds": 10.0}
    watch = PeerWatch("build1", ALLOWANCE, lambda: clock["seconds"], lambda: NOW)
    stamp = heartbeat_document("build2", NOW, 1, 0.0)
    watch.observe({"build2": Heartbeat("build2", "c1", "b1", stamp)})
    clock["seconds"] = 20.0
    watch.observe({"build2": Heartbeat("build2", "c2", "b2", stamp)})
    clock["seconds"] = 25.0
    recent = [
        {"kind": "server.stale", "subject": "build3", "when": "2025-11-05T11:00:00Z"}
    ]

    save_view(tmp_path / VIEW_FILE, view_of(watch, recent))
    loaded = load_view(tmp_path / VIEW_FILE)

    assert loaded is not None
    assert loaded.peers["build2"].state is Liveness.ALIVE
    assert loaded.peers["build2"].age_seconds == 5.0
    assert loaded.recent_events == recent
