"""The daemon's lease watch against real checkouts of a real bare remote."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from tests.conftest import Fleet, git
from watcher.clockscan import LeaseWatch
from watcher.config import Config, load_config
from watcher.daemon import Daemon
from watcher.events import Event, EventKind
from watcher.layout import LOCKS_PATH
from watcher.leasekeeper import LeaseKeeper
from watcher.leases import OBSERVATIONS_FILE, AcquireLock
from watcher.timestamps import now_utc
from watcher.transaction import transact


def eventually(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.02)
    raise AssertionError(f"not true within {timeout} s: {predicate}")


class Clocks:
    """The observer's monotonic and wall clocks, moved by the test."""

    def __init__(self) -> None:
        self.seconds = 1000.0
        self.wall = now_utc()

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.seconds += seconds
        self.wall += timedelta(seconds=seconds)


def acquire(config: Config, ttl: float) -> None:
    operation = AcquireLock("deploy", ttl, config.lease_margin, str(config.state_path))
    assert transact(config, operation).is_done


def remote_lock(fleet: Fleet) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(fleet.remote_file(LOCKS_PATH))["locks"][
        "deploy"
    ]
    return record


def test_a_cut_off_observer_judges_no_lease_until_it_has_fetched_again(
    fleet: Fleet,
) -> None:
    holder = load_config(str(fleet.clone("build2")), "build2")
    observer = fleet.clone("build1")
    clocks = Clocks()
    daemon = Daemon(Config(repo=observer, node="build1"), features=())
    keeper = LeaseKeeper(daemon, LeaseWatch(30.0, 180.0, clocks.monotonic, clocks.now))
    daemon.add_snapshot_listener(keeper.observe)
    heard: list[Event] = []
    daemon.add_handler(EventKind.LOCK_EXPIRED, heard.append)
    acquire(holder, 60.0)
    daemon.poller.poll()
    daemon.dispatcher.sync()

    url = git("remote", "get-url", "origin", cwd=observer).strip()
    git("remote", "set-url", "origin", (fleet.root / "gone.git").as_uri(), cwd=observer)
    acquire(holder, 120.0)  # renewed where the observer cannot see it
    clocks.advance(1000)
    daemon.poller.poll()
    keeper.scan()
    git("remote", "set-url", "origin", url, cwd=observer)
    daemon.poller.poll()
    keeper.scan()  # fetched, but the new tip is not processed yet
    daemon.dispatcher.sync()
    keeper.scan()  # the renewal restarted the watch
    clocks.advance(1000)
    keeper.scan()

    daemon.dispatcher.thread.start()  # emitted events are handled there
    eventually(lambda: heard)
    daemon.dispatcher.hints.put(None)
    daemon.dispatcher.thread.join(timeout=10)
    [event] = heard
    assert event.record is not None
    assert event.record["expires_at"] == remote_lock(fleet)["expires_at"]


def test_the_daemon_reports_and_frees_a_lease_its_holder_stopped_renewing(
    fleet: Fleet,
) -> None:
    holder = load_config(str(fleet.clone("build2")), "build2")
    acquire(holder, 1.0)
    config = Config(
        repo=fleet.clone("build1"), node="build1", poll_interval=0.3, lease_margin=0.5
    )
    daemon = Daemon(config, features=("watcher.leasekeeper",))
    heard: list[Event] = []
    daemon.add_handler(EventKind.LOCK_EXPIRED, heard.append)
    running = threading.Thread(target=daemon.run)
    running.start()
    try:
        eventually(lambda: remote_lock(fleet)["locked_by"] is None)
    finally:
        daemon.stop()
        running.join(timeout=60)

    assert [(event.subject, event.actor) for event in heard] == [("deploy", "build2")]
    assert remote_lock(fleet)["epoch"] == 2
    watched = json.loads((config.state_path / OBSERVATIONS_FILE).read_text())
    assert "deploy" in watched


def test_the_daemon_leaves_its_own_lapsed_lease_to_its_holder(fleet: Fleet) -> None:
    config = Config(
        repo=fleet.clone("build1"), node="build1", poll_interval=0.3, lease_margin=0.5
    )
    acquire(config, 1.0)
    daemon = Daemon(config, features=("watcher.leasekeeper",))
    heard: list[Event] = []
    daemon.add_handler(EventKind.LOCK_EXPIRED, heard.append)
    running = threading.Thread(target=daemon.run)
    running.start()
    try:
        eventually(lambda: heard)
    finally:
        daemon.stop()
        running.join(timeout=60)

    assert remote_lock(fleet)["locked_by"] == "build1"
