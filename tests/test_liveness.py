"""Liveness judged by each observer from when it saw a peer's heartbeat change."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Fleet, git
from watcher.events import EventKind
from watcher.heartbeat import (
    Heartbeat,
    commit_heartbeat,
    fetch_heartbeats,
    heartbeat_document,
    push_heartbeat,
    read_heartbeats,
)
from watcher.judgement import VIEW_FILE, load_view
from watcher.liveness import Liveness, PeerView, PeerWatch, transition_event

START = datetime(2025, 11, 5, 12, 0, 0, tzinfo=UTC)
INTERVAL = 60.0
ALLOWANCE = 3 * INTERVAL


class Clocks:
    """This observer's monotonic and wall clocks, moved by the test."""

    def __init__(self) -> None:
        self.seconds = 5000.0
        self.now = START

    def monotonic(self) -> float:
        return self.seconds

    def wall(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.seconds += seconds
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


@pytest.fixture
def watch(clocks: Clocks) -> PeerWatch:
    return PeerWatch("build1", ALLOWANCE, clocks.monotonic, clocks.wall)


def heartbeat(server: str, sequence: int, stamp: datetime = START) -> Heartbeat:
    document = heartbeat_document(server, stamp, sequence, 0.0)
    return Heartbeat(server, f"commit{sequence}", f"blob-{server}-{sequence}", document)


def kinds(transitions: list) -> list[EventKind]:
    events = [transition_event(t) for t in transitions]
    return [event.kind for event in events if event is not None]


def test_a_peer_never_seen_is_unknown_not_stale(watch: PeerWatch) -> None:
    assert watch.state_of("build2") is Liveness.UNKNOWN
    assert watch.observe({}) == []


def test_a_heartbeat_seen_once_is_unknown_until_it_changes(
    watch: PeerWatch, clocks: Clocks
) -> None:
    watch.observe({"build2": heartbeat("build2", 1)})
    assert watch.state_of("build2") is Liveness.UNKNOWN

    clocks.advance(INTERVAL)
    watch.observe({"build2": heartbeat("build2", 2)})

    assert watch.state_of("build2") is Liveness.ALIVE


def test_a_heartbeat_that_never_changes_goes_stale_after_the_allowance(
    watch: PeerWatch, clocks: Clocks
) -> None:
    """A dead server's last heartbeat proves nothing, however recent its stamp."""
    watch.observe({"build2": heartbeat("build2", 1)})

    clocks.advance(ALLOWANCE)
    assert watch.scan() == []
    clocks.advance(1)
    transitions = watch.scan()

    assert kinds(transitions) == [EventKind.SERVER_STALE]
    assert watch.state_of("build2") is Liveness.STALE


def test_stale_and_recovered_fire_once_per_transition(
    watch: PeerWatch, clocks: Clocks
) -> None:
    watch.observe({"build2": heartbeat("build2", 1)})
    clocks.advance(1)
    watch.observe({"build2": heartbeat("build2", 2)})

    fired: list[EventKind] = []
    for _ in range(10):
        clocks.advance(INTERVAL)
        fired += kinds(watch.observe({"build2": heartbeat("build2", 2)}))
    clocks.advance(1)
    fired += kinds(watch.observe({"build2": heartbeat("build2", 3)}))
    for _ in range(3):
        fired += kinds(watch.scan())

    assert fired == [EventKind.SERVER_STALE, EventKind.SERVER_RECOVERED]


def test_a_stale_event_names_the_server_and_how_long_it_was_silent(
    watch: PeerWatch, clocks: Clocks
) -> None:
    watch.observe({"build2": heartbeat("build2", 1)})
    clocks.advance(1)
    watch.observe({"build2": heartbeat("build2", 2)})
    clocks.advance(ALLOWANCE + 5)

    (event,) = [transition_event(t) for t in watch.scan()]

    assert event is not None
    assert event.subject == "build2"
    assert event.path == "build2/heartbeat.json"
    assert event.record is not None
    assert event.record["seconds_silent"] == ALLOWANCE + 5
    assert event.to_json()["kind"] == "server.stale"


def test_the_observer_does_not_watch_itself(watch: PeerWatch) -> None:
    watch.observe({"build1": heartbeat("build1", 1)})

    assert watch.peers == {}


def test_a_jumping_wall_clock_here_changes_nothing(
    watch: PeerWatch, clocks: Clocks
) -> None:
    watch.observe({"build2": heartbeat("build2", 1)})
    for sequence in range(2, 8):
        clocks.advance(INTERVAL)
        clocks.now += timedelta(hours=-3 if sequence % 2 else 5)
        assert kinds(watch.observe({"build2": heartbeat("build2", sequence)})) == []
        assert watch.state_of("build2") is Liveness.ALIVE


def test_a_restart_does_not_repeat_a_stale_event(clocks: Clocks) -> None:
    earlier = {
        "build2": PeerView("build2", Liveness.STALE, START, START, 900.0, None, None),
        "build3": PeerView("build3", Liveness.ALIVE, START, START, 1.0, None, None),
    }
    watch = PeerWatch("build1", ALLOWANCE, clocks.monotonic, clocks.wall)
    watch.restore(earlier)
    silent = {"build2": heartbeat("build2", 1), "build3": heartbeat("build3", 1)}

    watch.observe(silent)
    clocks.advance(ALLOWANCE + 1)
    fired = [(t.server, t.state) for t in watch.observe(silent)]

    assert fired == [("build3", Liveness.STALE)]
    assert watch.state_of("build2") is Liveness.STALE


def test_views_give_wall_times_on_this_machine(
    watch: PeerWatch, clocks: Clocks
) -> None:
    watch.observe({"build2": heartbeat("build2", 1)})
    clocks.advance(10)
    watch.observe({"build2": heartbeat("build2", 2, START + timedelta(seconds=12))})
    clocks.advance(5)

    view = watch.views()["build2"]

    assert view.state is Liveness.ALIVE
    assert view.age_seconds == 5
    assert view.last_change == START + timedelta(seconds=10)
    assert view.offset_seconds == 2.0


def beat_with_stamp(checkout: Path, sequence: int, stamp: datetime) -> None:
    document = heartbeat_document("build2", stamp, sequence, 0.0)
    push_heartbeat(
        checkout, "origin", "build2", commit_heartbeat(checkout, "build2", document)
    )


@pytest.mark.parametrize("skew", [timedelta(hours=1), timedelta(hours=-1)])
def test_a_skewed_peer_clock_causes_no_false_staleness_nor_false_liveness(
    fleet: Fleet, clocks: Clocks, skew: timedelta
) -> None:
    peer, observer = fleet.clone("build2"), fleet.clone("build1")
    watch = PeerWatch("build1", ALLOWANCE, clocks.monotonic, clocks.wall)

    def look() -> list[EventKind]:
        fetch_heartbeats(observer, "origin")
        return kinds(watch.observe(read_heartbeats(observer, "origin")))

    fired: list[EventKind] = []
    for sequence in range(1, 6):
        beat_with_stamp(peer, sequence, clocks.now + skew)
        fired += look()
        clocks.advance(INTERVAL)
    assert watch.state_of("build2") is Liveness.ALIVE
    assert watch.views()["build2"].offset_seconds == skew.total_seconds()

    for _ in range(4):
        clocks.advance(INTERVAL)
        fired += look()

    assert fired == [EventKind.SERVER_STALE]
    assert watch.state_of("build2") is Liveness.STALE


def test_a_peer_clock_off_beyond_the_threshold_is_warned_once_and_its_return_noted(
    fleet: Fleet, clocks: Clocks
) -> None:
    from loguru import logger

    peer, observer = fleet.clone("build2"), fleet.clone("build1")
    watch = PeerWatch("build1", ALLOWANCE, clocks.monotonic, clocks.wall)
    logged: list[tuple[str, str]] = []
    sink = logger.add(lambda m: logged.append((m.record["level"].name, str(m))))
    try:
        for sequence, skew in enumerate([0, 90, 95, 90, 2, 1], start=1):
            beat_with_stamp(peer, sequence, clocks.now + timedelta(seconds=skew))
            fetch_heartbeats(observer, "origin")
            watch.observe(read_heartbeats(observer, "origin"))
            clocks.advance(INTERVAL)
    finally:
        logger.remove(sink)

    clock_lines = [(level, text) for level, text in logged if "clock" in text]
    assert [level for level, _ in clock_lines] == ["WARNING", "INFO"]
    assert "build2" in clock_lines[0][1] and "+90 s" in clock_lines[0][1]


# Two real daemons (`build-watcher watch` processes) on checkouts of one remote.

PROGRAM = Path(sys.executable).with_name("build-watcher")
RECORD_EVENT = "import sys; open(sys.argv[1], 'a').write(sys.stdin.read() + '\\n')"
BEAT = 1.0
FAST_ALLOWANCE = 3 * BEAT
RUN_SECONDS = 10.0


def eventually(predicate: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout} s")


class Watcher:
    """One `build-watcher watch` process with a 1 s heartbeat, recording events."""

    def __init__(self, checkout: Path, root: Path) -> None:
        self.checkout = checkout
        self.events_file = root / f"{checkout.name}.events"
        config = root / f"{checkout.name}.toml"
        record = [sys.executable, "-c", RECORD_EVENT, str(self.events_file)]
        config.write_text(
            f"heartbeat_interval = {BEAT}\npoll_interval = 0.3\nkill_grace = 3\n"
            f'[[handlers]]\nevent = "*"\ncommand = {json.dumps(record)}\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        command = [str(PROGRAM), "--repo", str(checkout), "--config", str(config)]
        self.log = (root / f"{checkout.name}.log").open("wb")
        self.process = subprocess.Popen(
            [*command, "watch"],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def peer_state(self, server: str) -> str | None:
        view = load_view(self.checkout / ".git" / "build-watcher" / VIEW_FILE)
        peer = view.peers.get(server) if view else None
        return peer.state.value if peer else None

    def events(self, kind: str) -> list[dict[str, Any]]:
        if not self.events_file.exists():
            return []
        lines = self.events_file.read_text().splitlines()
        return [e for e in map(json.loads, filter(None, lines)) if e["kind"] == kind]

    def stop(self, signum: int) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        code = self.process.wait(timeout=60)
        self.log.close()
        return code


@pytest.fixture
def watchers(fleet: Fleet) -> Iterator[dict[str, Watcher]]:
    running = {
        node: Watcher(fleet.clone(node), fleet.root) for node in ("build1", "build2")
    }
    yield running
    for watcher in running.values():
        watcher.stop(signal.SIGKILL)


def heartbeat_only(fleet: Fleet, commit: str) -> bool:
    changed = git(
        "diff-tree",
        "--no-commit-id",
        "--name-only",
        "-r",
        "--root",
        commit,
        cwd=fleet.remote,
    )
    return all(path.endswith("/heartbeat.json") for path in changed.split())


@pytest.mark.slow
def test_two_daemons_keep_main_clean_see_each_other_and_report_a_death_once(
    fleet: Fleet, watchers: dict[str, Watcher]
) -> None:
    one, two = watchers["build1"], watchers["build2"]
    seed = set(fleet.remote_log())

    eventually(
        lambda: one.peer_state("build2") == two.peer_state("build1") == "alive", 60
    )
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        assert one.peer_state("build2") == "alive"
        assert two.peer_state("build1") == "alive"
        time.sleep(0.25)

    added = [commit for commit in fleet.remote_log() if commit not in seed]
    assert added, "the daemons committed their status"
    assert not [commit for commit in added if heartbeat_only(fleet, commit)]
    for node in ("build1", "build2"):
        assert (
            git("rev-list", "--count", f"heartbeat/{node}", cwd=fleet.remote).strip()
            == "1"
        )
        beat = json.loads(
            fleet.remote_file(f"{node}/heartbeat.json", f"heartbeat/{node}")
        )
        assert beat["sequence"] >= RUN_SECONDS / BEAT

    killed_at = time.monotonic()
    two.stop(signal.SIGKILL)
    eventually(lambda: one.events("server.stale"), FAST_ALLOWANCE + 10)
    noticed_after = time.monotonic() - killed_at
    time.sleep(
        2 * FAST_ALLOWANCE
    )  # long enough for a repeat to show, if there were one

    stale = one.events("server.stale")
    assert [event["subject"] for event in stale] == ["build2"]
    assert noticed_after <= FAST_ALLOWANCE + 1.5, noticed_after
    assert one.peer_state("build2") == "stale"
    dashboard = json.loads(fleet.remote_file("shared/health_dashboard.json"))
    assert dashboard["overall_status"] == "degraded"
    assert one.stop(signal.SIGTERM) == 0
    assert json.loads(fleet.remote_file("build1/status.json"))["status"] == "offline"


def test_a_cut_off_observer_does_not_declare_its_peers_dead(
    fleet: Fleet, clocks: Clocks
) -> None:
    from watcher.config import Config
    from watcher.daemon import Daemon
    from watcher.fleetwatch import FleetWatch

    observer, peer = fleet.clone("build1"), fleet.clone("build2")
    daemon = Daemon(Config(repo=observer, node="build1"), features=())
    heard: list[str] = []
    daemon.add_handler(
        EventKind.SERVER_STALE, lambda event: heard.append(event.subject)
    )
    service = FleetWatch(daemon)
    service.watch = PeerWatch("build1", ALLOWANCE, clocks.monotonic, clocks.wall)

    def peer_beats_and_observer_looks(sequence: int) -> None:
        beat_with_stamp(peer, sequence, clocks.now)
        fetch_heartbeats(observer, "origin")
        service.beat()
        service.scan()

    peer_beats_and_observer_looks(1)
    peer_beats_and_observer_looks(2)
    assert service.watch.state_of("build2") is Liveness.ALIVE

    fleet.remote.rename(fleet.remote.with_name("away.git"))
    service.beat()
    clocks.advance(10 * ALLOWANCE)
    service.scan()
    assert not service.publisher.reachable
    assert service.watch.state_of("build2") is Liveness.ALIVE
    assert heard == []

    fleet.remote.with_name("away.git").rename(fleet.remote)
    service.beat()
    service.scan()
    daemon.dispatcher.thread.start()  # emitted events are handled there
    eventually(lambda: heard == ["build2"], 10)
    daemon.dispatcher.hints.put(None)
    daemon.dispatcher.thread.join(timeout=10)
    saved = load_view(observer / ".git" / "build-watcher" / VIEW_FILE)
    assert saved is not None
    assert saved.peers["build2"].state is Liveness.STALE
    assert [item["kind"] for item in saved.recent_events] == ["server.stale"]
    dashboard = json.loads(fleet.remote_file("shared/health_dashboard.json"))
    assert dashboard["overall_status"] == "degraded"


# Daemons on threads of this process, heartbeats every 0.3 s.

QUICK = {"heartbeat_interval": 0.3, "stale_after": 1.5, "poll_interval": 0.3}


def liveness_daemon(fleet: Fleet, node: str, **settings: Any) -> Any:
    from watcher.config import Config
    from watcher.daemon import Daemon

    config = Config(repo=fleet.clone(node), node=node, kill_grace=2.0)
    return Daemon(replace(config, **QUICK, **settings), features=("watcher.liveness",))


@contextlib.contextmanager
def running(*daemons: Any) -> Iterator[None]:
    threads = [threading.Thread(target=daemon.run) for daemon in daemons]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        for daemon in daemons:
            daemon.stop()
        for thread in threads:
            thread.join(timeout=60)


def published_sequence(fleet: Fleet, node: str) -> int:
    branch = f"heartbeat/{node}"
    return int(
        json.loads(fleet.remote_file(f"{node}/heartbeat.json", branch))["sequence"]
    )


def submit_from(fleet: Fleet, node: str) -> None:
    from watcher.config import Config
    from watcher.joblist import SubmitJob
    from watcher.transaction import transact

    config = Config(repo=fleet.clone(node), node=node)
    assert transact(config, SubmitJob(type="build", branch="main")).is_done


def test_a_busy_dispatcher_does_not_make_its_server_look_stale(fleet: Fleet) -> None:
    blocked, release = threading.Event(), threading.Event()

    def long_handler(event: Any) -> None:
        blocked.set()
        release.wait(60)

    busy, peer = liveness_daemon(fleet, "build1"), liveness_daemon(fleet, "build2")
    busy.add_handler(EventKind.JOB_QUEUED, long_handler)
    stale: list[str] = []
    peer.add_handler(EventKind.SERVER_STALE, lambda event: stale.append(event.subject))
    view = peer.config.state_path / VIEW_FILE

    def state_seen_by_peer() -> str | None:
        saved = load_view(view)
        known = saved.peers.get("build1") if saved else None
        return known.state.value if known else None

    with running(busy, peer):
        eventually(lambda: state_seen_by_peer() == "alive", 30)
        submit_from(fleet, "build3")
        eventually(blocked.is_set, 30)
        first = published_sequence(fleet, "build1")
        # Beats for twice the allowance while the handler holds the dispatcher.
        beats = int(2 * QUICK["stale_after"] / QUICK["heartbeat_interval"])
        eventually(lambda: published_sequence(fleet, "build1") >= first + beats, 30)
        assert not release.is_set()
        assert state_seen_by_peer() == "alive"
        release.set()

    assert stale == []


def test_a_stuck_dispatcher_holds_the_heartbeat_until_it_moves_again(
    fleet: Fleet,
) -> None:
    from loguru import logger

    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(message.record["message"]))
    release = threading.Event()
    stuck = liveness_daemon(fleet, "build1")
    stuck.stall_limit = 0.5
    stuck.add_handler(EventKind.JOB_QUEUED, lambda event: release.wait(60))
    try:
        with running(stuck):
            eventually(stuck.dispatcher.thread.is_alive, 30)
            submit_from(fleet, "build2")
            eventually(lambda: any("heartbeat held" in m for m in messages), 30)
            release.set()
            eventually(lambda: any("heartbeat resumed" in m for m in messages), 30)
    finally:
        logger.remove(sink)
