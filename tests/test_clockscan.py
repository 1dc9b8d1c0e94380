from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from watcher.clockscan import LeaseWatch
from watcher.documents import Snapshot
from watcher.events import EventKind
from watcher.layout import LOCKS_PATH

LOCKED_AT = datetime(2025, 11, 4, 10, 0, tzinfo=UTC)


class Clocks:
    """A monotonic and a wall clock that the test moves by hand."""

    def __init__(self) -> None:
        self.elapsed = 1000.0
        self.wall = LOCKED_AT

    def monotonic(self) -> float:
        return self.elapsed

    def now(self) -> datetime:
        return self.wall

    def advance(self, seconds: float, wall: float | None = None) -> None:
        self.elapsed += seconds
        self.wall += timedelta(seconds=seconds if wall is None else wall)


def locks(commit: str, **records: dict[str, Any] | None) -> Snapshot:
    document = {"locks": {name: rec for name, rec in records.items() if rec}}
    return Snapshot(commit, {LOCKS_PATH: document}, {LOCKS_PATH: commit})


def lease(holder: str = "build2", ttl: int = 60, **fields: Any) -> dict[str, Any]:
    record = {
        "locked_by": holder,
        "locked_at": "2025-11-04T10:00:00Z",
        "expires_at": (LOCKED_AT + timedelta(seconds=ttl)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
        "ttl_seconds": ttl,
        "epoch": 3,
    }
    record.update(fields)
    return record


def watch(clocks: Clocks, margin: float = 30.0) -> LeaseWatch:
    return LeaseWatch(margin, 300.0, monotonic=clocks.monotonic, wall_clock=clocks.now)


def test_a_lease_left_alone_past_its_time_and_margin_expires_once() -> None:
    clocks = Clocks()
    watcher = watch(clocks)
    watcher.observe(locks("c1", deploy=lease()))

    clocks.advance(89)
    early = watcher.scan()
    clocks.advance(1)
    events = watcher.scan()
    later = watcher.scan()

    assert early == []
    assert [(e.kind, e.subject, e.actor, e.commit) for e in events] == [
        (EventKind.LOCK_EXPIRED, "deploy", "build2", "c1")
    ]
    assert later == []


def test_a_renewal_restarts_the_watch() -> None:
    clocks = Clocks()
    watcher = watch(clocks)
    watcher.observe(locks("c1", deploy=lease()))
    clocks.advance(80)
    renewed = lease(expires_at="2025-11-04T10:02:20Z")
    watcher.observe(locks("c2", deploy=renewed))

    clocks.advance(80)

    assert watcher.scan() == []
    assert watcher.unchanged_for("deploy") == 80


def test_a_wall_clock_jumping_ahead_does_not_expire_a_live_lease() -> None:
    clocks = Clocks()
    watcher = watch(clocks)
    watcher.observe(locks("c1", deploy=lease()))

    clocks.advance(5, wall=86400)

    assert watcher.scan() == []


def test_a_holder_whose_clock_runs_behind_is_not_cut_short() -> None:
    """The record says it expires in an hour: our watch alone does not end it."""
    clocks = Clocks()
    watcher = watch(clocks)
    watcher.observe(locks("c1", deploy=lease(expires_at="2025-11-04T11:00:00Z")))

    clocks.advance(600)
    assert watcher.scan() == []
    clocks.advance(3000)
    assert [e.kind for e in watcher.scan()] == [EventKind.LOCK_EXPIRED]


def test_a_legacy_lease_without_expiry_uses_the_default_time() -> None:
    clocks = Clocks()
    watcher = watch(clocks)
    legacy = {"locked_by": "build1", "locked_at": "2025-11-04 10:00"}
    watcher.observe(locks("c1", deploy=legacy))

    clocks.advance(300 + 29)
    assert watcher.scan() == []
    clocks.advance(1)
    assert [e.actor for e in watcher.scan()] == ["build1"]


def test_free_and_released_locks_are_not_watched() -> None:
    clocks = Clocks()
    watcher = watch(clocks)
    watcher.observe(locks("c1", deploy=lease(), idle={"locked_by": None}))
    watcher.observe(locks("c2", idle={"locked_by": None}))

    clocks.advance(10_000)

    assert watcher.scan() == []
    assert watcher.unchanged_for("deploy") is None


def test_every_observer_names_the_same_expiry_alike() -> None:
    first, second = Clocks(), Clocks()
    one, two = watch(first), watch(second, margin=120)
    for watcher in (one, two):
        watcher.observe(locks("c1", deploy=lease()))

    first.advance(100)
    second.advance(500)

    assert [e.id for e in one.scan()] == [e.id for e in two.scan()]
