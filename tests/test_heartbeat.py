"""Heartbeat branches: one parentless commit, replaced at every beat, read by peers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Fleet, git
from watcher.config import Config
from watcher.heartbeat import (
    commit_heartbeat,
    fetch_heartbeats,
    fetch_refspec,
    heartbeat_document,
    push_heartbeat,
    read_heartbeats,
    tracking_prefix,
)
from watcher.remoterefs import RemoteUnreachable
from watcher.transaction import tracking_ref

MOMENT = datetime(2025, 11, 5, 13, 31, 35, tzinfo=UTC)


def beat(checkout: Path, server: str, sequence: int, moment: datetime = MOMENT) -> str:
    document = heartbeat_document(server, moment, sequence, 100.0, {"status": "idle"})
    commit = commit_heartbeat(checkout, server, document)
    push_heartbeat(checkout, "origin", server, commit)
    return commit


def test_a_heartbeat_commit_has_no_parent_and_holds_only_the_heartbeat(
    fleet: Fleet,
) -> None:
    checkout = fleet.clone("build1")

    commit = beat(checkout, "build1", 1)

    assert git("rev-list", "--parents", "-n", "1", commit, cwd=checkout).split() == [
        commit
    ]
    files = git("ls-tree", "-r", "--name-only", commit, cwd=checkout).split()
    assert files == ["build1/heartbeat.json"]
    document = json.loads(git("show", f"{commit}:build1/heartbeat.json", cwd=checkout))
    assert document["server"] == "build1"
    assert document["timestamp"] == "2025-11-05T13:31:35Z"
    assert {"uptime_seconds", "healthy", "sequence", "status"} <= set(document)


def test_beats_replace_the_branch_and_leave_main_alone(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")
    main_before = fleet.remote_log()

    for sequence in range(1, 6):
        last = beat(checkout, "build1", sequence, MOMENT + timedelta(seconds=sequence))

    assert fleet.remote_log("heartbeat/build1") == [last]
    assert fleet.remote_log() == main_before


def test_peers_read_heartbeats_fetched_from_the_remote(fleet: Fleet) -> None:
    one, two = fleet.clone("build1"), fleet.clone("build2")
    beat(one, "build1", 7)

    fetch_heartbeats(two, "origin")
    heartbeats = read_heartbeats(two, "origin")

    assert set(heartbeats) == {"build1"}
    assert heartbeats["build1"].document is not None
    assert heartbeats["build1"].document["sequence"] == 7
    assert heartbeats["build1"].timestamp == MOMENT


def test_each_beat_changes_the_blob_even_within_one_second(fleet: Fleet) -> None:
    one, two = fleet.clone("build1"), fleet.clone("build2")
    blobs = set()
    for sequence in (1, 2):
        beat(one, "build1", sequence)
        fetch_heartbeats(two, "origin")
        blobs.add(read_heartbeats(two, "origin")["build1"].blob)

    assert len(blobs) == 2


def test_branches_that_are_not_server_ids_are_ignored(fleet: Fleet) -> None:
    one = fleet.clone("build1")
    commit = beat(one, "build1", 1)
    git("push", "--quiet", "origin", f"{commit}:refs/heads/heartbeat/all", cwd=one)
    two = fleet.clone("build2")

    fetch_heartbeats(two, "origin")

    assert set(read_heartbeats(two, "origin")) == {"build1"}


def test_a_heartbeat_naming_another_server_has_no_document(fleet: Fleet) -> None:
    one = fleet.clone("build1")
    document = heartbeat_document("build2", MOMENT, 1, 0.0)
    commit = commit_heartbeat(one, "build1", document)
    push_heartbeat(one, "origin", "build1", commit)

    heartbeats = read_heartbeats(one, "origin")

    assert heartbeats["build1"].blob
    assert heartbeats["build1"].document is None


def test_a_url_remote_keeps_heartbeats_under_a_private_namespace(
    fleet: Fleet,
) -> None:
    one = fleet.clone("build1")
    document = heartbeat_document("build1", MOMENT, 1, 0.0)
    push_heartbeat(one, fleet.url, "build1", commit_heartbeat(one, "build1", document))

    assert tracking_prefix(fleet.url).startswith("refs/build-watcher/")
    for remote in ("origin", fleet.url):
        config = Config(repo=one, remote=remote)
        assert (
            tracking_prefix(remote).rsplit("/", 2)[0]
            == (tracking_ref(config).rsplit("/", 1)[0])
        )
    assert fetch_refspec(fleet.url).startswith("+refs/heads/heartbeat/*:")
    assert set(read_heartbeats(one, fleet.url)) == {"build1"}


def test_an_unreachable_remote_is_reported_as_such(
    fleet: Fleet, tmp_path: Path
) -> None:
    one = fleet.clone("build1")
    git("remote", "set-url", "origin", str(tmp_path / "gone.git"), cwd=one)
    document = heartbeat_document("build1", MOMENT, 1, 0.0)

    with pytest.raises(RemoteUnreachable):
        push_heartbeat(
            one, "origin", "build1", commit_heartbeat(one, "build1", document)
        )


def test_reading_again_reuses_heartbeats_whose_branch_did_not_move(
    fleet: Fleet,
) -> None:
    one, two = fleet.clone("build1"), fleet.clone("build2")
    beat(one, "build1", 1)
    beat(two, "build2", 1)
    first = read_heartbeats(one, "origin")
    fetch_heartbeats(one, "origin")
    first = read_heartbeats(one, "origin", first)

    beat(two, "build2", 2)
    fetch_heartbeats(one, "origin")
    second = read_heartbeats(one, "origin", first)

    assert second["build1"] is first["build1"]
    assert second["build2"].blob != first["build2"].blob
    assert second["build2"].document is not None
    assert second["build2"].document["sequence"] == 2
