"""Named leases: epochs, release, and takeover only after watching the record."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import Fleet
from watcher.config import Config, load_config
from watcher.layout import LOCKS_PATH
from watcher.leases import AcquireLock, ExpireLock, ReleaseLock
from watcher.transaction import Outcome, OutcomeStatus, transact


def server(fleet: Fleet, node: str) -> Config:
    return load_config(str(fleet.clone(node)), node)


def acquire(config: Config, ttl: float, margin: float = 0.0) -> Outcome:
    operation = AcquireLock("deploy", ttl, margin, str(config.state_path))
    return transact(config, operation)


def remote_lock(fleet: Fleet, name: str = "deploy") -> dict[str, Any]:
    record: dict[str, Any] = json.loads(fleet.remote_file(LOCKS_PATH))["locks"][name]
    return record


def build_watcher(checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcher", "--repo", str(checkout), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_acquire_renew_and_release_raise_the_epoch_only_on_a_new_holder(
    fleet: Fleet,
) -> None:
    config = server(fleet, "build1")

    first = acquire(config, 60)
    renewed = acquire(config, 60)
    assert remote_lock(fleet)["epoch"] == 1
    released = transact(config, ReleaseLock("deploy"))

    assert first.summary == "acquire lock deploy (epoch 1)"
    assert renewed.summary == "renew lock deploy (epoch 1)"
    assert released.summary == "release lock deploy (epoch 2)"
    assert remote_lock(fleet)["locked_by"] is None


def test_a_held_lease_is_refused_with_how_long_it_has_been_watched(
    fleet: Fleet,
) -> None:
    holder, taker = server(fleet, "build1"), server(fleet, "build2")
    acquire(holder, 60)

    refused = acquire(taker, 60, margin=30)

    assert refused.status is OutcomeStatus.MOOT
    assert "held by build1 until" in refused.reason
    assert "seen unchanged for 0 s of the required 90 s" in refused.reason
    assert remote_lock(fleet)["locked_by"] == "build1"


def test_takeover_only_after_watching_the_record_for_the_lease_and_margin(
    fleet: Fleet,
) -> None:
    holder, taker = server(fleet, "build1"), server(fleet, "build2")
    acquire(holder, 0.5)
    started = time.monotonic()

    outcome = acquire(taker, 0.5, margin=0.3)
    while outcome.status is OutcomeStatus.MOOT and time.monotonic() - started < 30:
        outcome = acquire(taker, 0.5, margin=0.3)

    assert outcome.status is OutcomeStatus.DONE
    assert time.monotonic() - started >= 0.8
    assert outcome.summary == "take over lock deploy (epoch 2)"
    assert remote_lock(fleet)["locked_by"] == "build2"


def test_a_renewal_restarts_the_watch(fleet: Fleet) -> None:
    holder, taker = server(fleet, "build1"), server(fleet, "build2")
    acquire(holder, 1)
    acquire(taker, 1, margin=0.3)
    # Renewing for longer than a second moves `expires_at` (whole seconds) on,
    # while staying under the 1.3 s the taker must watch an unchanged record.
    deadline = time.monotonic() + 1.2
    while time.monotonic() < deadline:
        acquire(holder, 1)

    refused = acquire(taker, 1, margin=0.3)

    assert refused.status is OutcomeStatus.MOOT
    assert "seen unchanged for 0 s" in refused.reason
    assert remote_lock(fleet)["locked_by"] == "build1"


def test_an_expired_lease_is_freed_fenced_by_its_epoch(fleet: Fleet) -> None:
    holder, peer = server(fleet, "build1"), server(fleet, "build2")
    acquire(holder, 0.2)
    expire = ExpireLock("deploy", 1, 0.2, 0.1, str(peer.state_path))
    started = time.monotonic()

    outcome = transact(peer, expire)
    while outcome.status is OutcomeStatus.MOOT and time.monotonic() - started < 30:
        outcome = transact(peer, expire)
    stale = transact(peer, expire)

    assert outcome.summary == "expire lock deploy of build1 (epoch 2)"
    assert stale.status is OutcomeStatus.MOOT
    assert remote_lock(fleet)["locked_by"] is None


def test_the_locks_command_acquires_lists_and_releases(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")
    other = fleet.clone("build2")

    taken = build_watcher(checkout, "locks", "acquire", "deploy", "--ttl", "120")
    refused = build_watcher(other, "locks", "acquire", "deploy", "--ttl", "120")
    listed = build_watcher(checkout, "locks", "--format", "json")
    released = build_watcher(checkout, "locks", "release", "deploy")
    not_ours = build_watcher(other, "locks", "release", "deploy")

    assert taken.returncode == 0 and "acquire lock deploy" in taken.stdout
    assert refused.returncode == 1 and "held by build1" in refused.stdout
    [row] = json.loads(listed.stdout)["locks"]
    assert row["name"] == "deploy" and row["locked_by"] == "build1"
    assert released.returncode == 0 and not_ours.returncode == 1


def test_the_locks_command_checks_its_arguments(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")

    no_ttl = build_watcher(checkout, "locks", "acquire", "deploy")
    bad_name = build_watcher(checkout, "locks", "acquire", "../x", "--ttl", "5")
    stray_ttl = build_watcher(checkout, "locks", "release", "deploy", "--ttl", "5")

    assert no_ttl.returncode == 2
    assert "`locks acquire` needs --ttl SECONDS: how long the lease lasts" in (
        no_ttl.stderr
    )
    assert bad_name.returncode == 2 and "not usable" in bad_name.stderr
    assert stray_ttl.returncode == 2 and "only for `locks acquire`" in stray_ttl.stderr


def test_the_locks_help_says_ttl_is_required_with_acquire() -> None:
    command = [sys.executable, "-m", "watcher", "locks", "--help"]

    done = subprocess.run(command, capture_output=True, text=True, check=False)

    assert "required with acquire" in " ".join(done.stdout.split())
