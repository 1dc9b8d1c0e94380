"""Migration: a legacy repository becomes strict without losing a record."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CORPUS_BUNDLE, git
from watcher.documents import Snapshot, read_snapshot
from watcher.layout import JOBS_PATH, MESSAGES_PATH, kind_of, server_ids
from watcher.migration import migrate_documents, remaining_problems
from watcher.validation import Profile, check_value

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def migrate(documents: dict[str, Any]) -> dict[str, Any]:
    migration = migrate_documents(documents, NOW)
    return {**documents, **migration.documents}


def test_server_id_dialect_becomes_server() -> None:
    status = {"server_id": "build1", "status": "idle", "timestamp": "2025-11-01 10:00"}
    migrated = migrate({"build1/status.json": status})["build1/status.json"]
    assert migrated["server"] == "build1"
    assert "server_id" not in migrated
    assert migrated["timestamp"] == "2025-11-01T10:00:00Z"


def test_a_value_that_is_not_a_time_is_kept_beside_it() -> None:
    shell = "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    status = {"server": "build3", "status": "idle", "timestamp": shell}
    migrated = migrate({"build3/status.json": status})["build3/status.json"]
    assert migrated["timestamp"] == "2026-01-02T03:04:05Z"
    assert migrated["timestamp_legacy"] == shell


def test_repeated_message_ids_get_new_ids_and_keep_the_old_one() -> None:
    first = {"id": "msg_1", "from": "build1", "to": "build2", "subject": "a"}
    second = {"id": "msg_1", "from": "build2", "to": "build1", "subject": "b"}
    for message in (first, second):
        message.update(body="x", timestamp="2025-11-01T00:00:00Z", read=False)
    messages = migrate({MESSAGES_PATH: {"messages": [first, second]}})[MESSAGES_PATH]
    kept, renamed = messages["messages"]
    assert kept["id"] == "msg_1"
    assert renamed["id"] != "msg_1"
    assert renamed["legacy_id"] == "msg_1"


def test_read_state_is_per_recipient_and_a_broadcast_is_shown_again() -> None:
    direct = {"id": "msg_a", "from": "build1", "to": "build2", "read": True}
    broadcast = {"id": "msg_b", "from": "build1", "to": "all", "read": True}
    for message in (direct, broadcast):
        message.update(subject="s", body="b", timestamp="2025-11-01T00:00:00Z")
    value = {"messages": [direct, broadcast]}
    messages = migrate({MESSAGES_PATH: value})[MESSAGES_PATH]["messages"]
    assert messages[0]["read_by"] == ["build2"]
    assert messages[1]["read_by"] == []
    assert all(message["type"] == "info" for message in messages)


def test_the_early_dashboard_shape_becomes_an_array() -> None:
    dashboard = {"servers": {"build1": {"status": "idle", "healthy": True}}}
    migrated = migrate({"shared/health_dashboard.json": dashboard})
    servers = migrated["shared/health_dashboard.json"]["servers"]
    assert servers == [{"server": "build1", "status": "idle", "healthy": True}]


def test_artifacts_without_checksums_move_aside() -> None:
    status = {
        "server": "build2",
        "status": "idle",
        "timestamp": "2025-11-01T00:00:00Z",
        "last_build": {"id": "job_1", "artifacts": ["engine.war"]},
    }
    migrated = migrate({"build2/status.json": status})["build2/status.json"]
    assert migrated["last_build"]["artifacts"] == []
    assert migrated["last_build"]["legacy_artifacts"] == ["engine.war"]


def test_migrating_twice_changes_nothing_more() -> None:
    status = {"server_id": "build1", "status": "idle", "timestamp": "2025-11-01 10:00"}
    once = migrate({"build1/status.json": status})
    assert migrate_documents(once, NOW).documents == {}


def test_every_sampled_corpus_version_migrates_to_strict(corpus_repo: Path) -> None:
    revisions = git("rev-list", "HEAD", cwd=corpus_repo).split()
    for revision in revisions[:: len(revisions) // 40]:
        snapshot = read_snapshot(corpus_repo, revision)
        migration = migrate_documents(snapshot.documents, NOW)
        assert remaining_problems(snapshot.documents, migration) == [], revision


@pytest.fixture
def legacy_checkout(tmp_path: Path) -> Path:
    """A checkout of a bare remote that holds the real legacy history."""
    remote = tmp_path / "remote.git"
    git("clone", "--quiet", "--bare", str(CORPUS_BUNDLE), str(remote), cwd=tmp_path)
    checkout = tmp_path / "build1"
    git("clone", "--quiet", remote.as_uri(), str(checkout), cwd=tmp_path)
    return checkout


def cli(checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "watcher", "--repo", str(checkout), *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def remote_snapshot(checkout: Path) -> Snapshot:
    git("fetch", "--quiet", "origin", cwd=checkout)
    return read_snapshot(checkout, "origin/main")


def test_dry_run_prints_changes_and_writes_nothing(legacy_checkout: Path) -> None:
    before = git("rev-parse", "origin/main", cwd=legacy_checkout).strip()
    result = cli(legacy_checkout, "migrate", "--dry-run", "--format", "json")
    assert result.returncode == 0, result.stderr
    changes = json.loads(result.stdout)["changes"]
    assert MESSAGES_PATH in changes
    assert git("ls-remote", "origin", "main", cwd=legacy_checkout).startswith(before)


def test_corpus_tip_migrates_without_losing_a_record(legacy_checkout: Path) -> None:
    before = remote_snapshot(legacy_checkout)

    result = cli(legacy_checkout, "--node", "build1", "migrate")

    assert result.returncode == 0, result.stderr
    after = remote_snapshot(legacy_checkout)
    assert after.commit != before.commit
    assert counts(after) == counts(before)
    assert bodies(after) == bodies(before)
    for path, value in after.documents.items():
        if kind_of(path) is not None:
            assert check_value(path, value, Profile.STRICT) == [], path


def test_a_second_migration_has_nothing_to_do(legacy_checkout: Path) -> None:
    assert cli(legacy_checkout, "--node", "build1", "migrate").returncode == 0
    tip = remote_snapshot(legacy_checkout).commit

    result = cli(legacy_checkout, "--node", "build1", "migrate")

    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stdout
    assert remote_snapshot(legacy_checkout).commit == tip


def counts(snapshot: Snapshot) -> tuple[int, int, int]:
    jobs = snapshot.documents[JOBS_PATH]["jobs"]
    messages = snapshot.documents[MESSAGES_PATH]["messages"]
    return len(jobs), len(messages), len(server_ids(snapshot.paths))


def bodies(snapshot: Snapshot) -> list[bytes]:
    messages = snapshot.documents[MESSAGES_PATH]["messages"]
    return [message["body"].encode("utf-8") for message in messages]
