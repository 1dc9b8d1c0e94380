"""Liveness judged by each observer from when it saw a peer's heartbeat change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Fleet
from watcher.events import EventKind
from watcher.heartbeat import (
    Heartbeat,
    commit_heartbeat,
    fetch_heartbeats,
    heartbeat_document,
    push_heartbeat,
    read_heartbeats,
)
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


def kinds(watch: PeerWatch, transitions: list) -> list[EventKind]:
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

    assert kinds(watch, transitions) == [EventKind.SERVER_STALE]
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
        fired += kinds(watch, watch.observe({"build2": heartbeat("build2", 2)}))
    clocks.advance(1)
    fired += kinds(watch, watch.observe({"build2": heartbeat("build2", 3)}))
    for _ in range(3):
        fired += kinds(watch, watch.scan())

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
        assert (
            kinds(watch, watch.observe({"build2": heartbeat("build2", sequence)})) == []
        )
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
        return kinds(watch, watch.observe(read_heartbeats(observer, "origin")))

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
