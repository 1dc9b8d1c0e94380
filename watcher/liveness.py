"""Liveness of peers, judged by this observer on its own monotonic clock.

A peer is alive while this observer keeps seeing its heartbeat blob change: the
moment of each change is taken from `time.monotonic()` here, never from the
peer's timestamp, so a peer's clock that is wrong or jumps (or this machine's
wall clock jumping) causes neither false staleness nor false liveness.

- alive: a change was seen less than `stale_after` seconds ago;
- stale: no change for `stale_after` seconds, counting from the last change seen
  or, when none was seen yet, from the first sight of the heartbeat (a heartbeat
  that merely exists proves nothing: it may be a dead server's last one);
- unknown: no heartbeat seen at all, or seen for less than `stale_after` without
  a change yet.

A change only proves life when it happens between two looks by this process, so
the judgement starts afresh at every start; the last announced states are
restored from the saved view so that a restart does not repeat `server.stale`.

The apparent clock offset of a peer is its heartbeat timestamp minus this
machine's wall clock at the moment the change was seen. It is too negative by up
to the fetch delay (the beat is seen after it was written), which is within a
poll interval; it is reported, never used to judge liveness. An offset beyond
`OFFSET_WARNING` seconds is logged at WARNING once when a peer crosses it (and at
INFO when it comes back), since timestamps that peer writes mislead people.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from loguru import logger

from watcher.events import Event, EventKind, event_id
from watcher.heartbeat import Heartbeat
from watcher.layout import heartbeat_path
from watcher.timestamps import now_utc

if TYPE_CHECKING:
    from watcher.daemon import Daemon

VIEW_FILE = "liveness.json"
OFFSET_WARNING = 30.0


def install(daemon: Daemon) -> None:
    """Heartbeats, the liveness scan, and this server's status on start and stop."""
    # Imported here: the service builds on the fleet view, which imports this module.
    from watcher.fleetwatch import FleetWatch

    FleetWatch(daemon).install()


class Liveness(enum.Enum):
    ALIVE = "alive"
    STALE = "stale"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class PeerRecord:
    """What this observer knows of one peer; times are on the observer's clocks."""

    server: str
    blob: str
    first_seen: float
    changed_at: float | None
    state: Liveness
    state_since: float
    offset_seconds: float | None = None
    peer_timestamp: str | None = None


@dataclass(frozen=True)
class Transition:
    """A peer's announced state changed; `previous` is what was announced before."""

    server: str
    state: Liveness
    previous: Liveness
    record: PeerRecord
    seconds_silent: float


@dataclass(frozen=True)
class PeerView:
    """One peer as shown to people: wall-clock times on this machine's clock."""

    server: str
    state: Liveness
    since: datetime | None
    last_change: datetime | None
    age_seconds: float | None
    offset_seconds: float | None
    peer_timestamp: str | None


class PeerWatch:
    """Per peer, when this observer last saw its heartbeat change."""

    def __init__(
        self,
        me: str | None,
        stale_after: float,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = now_utc,
    ) -> None:
        self.me = me
        self.stale_after = stale_after
        self.monotonic = monotonic
        self.wall = wall
        self.peers: dict[str, PeerRecord] = {}
        self.restored: dict[str, PeerView] = {}
        self.skewed: set[str] = set()
        self.started = monotonic()

    def restore(self, views: Mapping[str, PeerView]) -> None:
        """States announced by a previous run, kept until judged afresh."""
        self.restored = dict(views)

    def observe(self, heartbeats: Mapping[str, Heartbeat]) -> list[Transition]:
        """Record which heartbeats changed since the last look, then judge."""
        now = self.monotonic()
        for server, heartbeat in heartbeats.items():
            if server == self.me:
                continue
            record = self.peers.get(server)
            if record is None:
                self.peers[server] = self._first_sight(heartbeat, now)
            elif record.blob != heartbeat.blob:
                self.peers[server] = self._changed(record, heartbeat, now)
        return self.scan()

    def scan(self) -> list[Transition]:
        """Judge every peer against the allowance: one transition per change."""
        now = self.monotonic()
        transitions = []
        for server, record in sorted(self.peers.items()):
            state = self._judge(record, now)
            if state is record.state:
                continue
            self.peers[server] = replace(record, state=state, state_since=now)
            transitions.append(self._transition(record, state, now))
        return transitions

    def pending(self) -> list[str]:
        """Peers seen but not judged yet: no change seen, allowance not over."""
        now = self.monotonic()
        return sorted(
            server
            for server, record in self.peers.items()
            if record.changed_at is None and now - record.first_seen <= self.stale_after
        )

    def is_settled(self) -> bool:
        """Watched for a whole allowance, and no peer is still being judged."""
        watched = self.monotonic() - self.started >= self.stale_after
        return watched and not self.pending()

    def state_of(self, server: str) -> Liveness:
        record = self.peers.get(server)
        return record.state if record else Liveness.UNKNOWN

    def views(self) -> dict[str, PeerView]:
        """Every peer as wall-clock times on this machine, for display and saving."""
        now, wall = self.monotonic(), self.wall()
        return {
            server: _view(record, now, wall) for server, record in self.peers.items()
        }

    def _first_sight(self, heartbeat: Heartbeat, now: float) -> PeerRecord:
        earlier = self.restored.get(heartbeat.server)
        if earlier is None or earlier.since is None:
            return PeerRecord(
                heartbeat.server, heartbeat.blob, now, None, Liveness.UNKNOWN, now
            )
        since = now - (self.wall() - earlier.since).total_seconds()
        return PeerRecord(
            heartbeat.server, heartbeat.blob, now, None, earlier.state, since
        )

    def _changed(
        self, record: PeerRecord, heartbeat: Heartbeat, now: float
    ) -> PeerRecord:
        stamp = heartbeat.timestamp
        offset = (stamp - self.wall()).total_seconds() if stamp else None
        raw = heartbeat.document.get("timestamp") if heartbeat.document else None
        if offset is not None:
            self._note_offset(record.server, offset)
        return replace(
            record,
            blob=heartbeat.blob,
            changed_at=now,
            offset_seconds=offset,
            peer_timestamp=raw if isinstance(raw, str) else None,
        )

    def _note_offset(self, server: str, offset: float) -> None:
        """Log a peer's clock offset when it crosses `OFFSET_WARNING`, either way."""
        skewed = abs(offset) > OFFSET_WARNING
        if skewed == (server in self.skewed):
            return
        log = logger.bind(peer=server, offset_seconds=round(offset, 1))
        if skewed:
            self.skewed.add(server)
            log.warning(
                "the clock of {peer} is {offset:+.0f} s off this server's; timestamps "
                "it writes are misleading: check NTP (timedatectl) on both servers",
                peer=server,
                offset=offset,
            )
        else:
            self.skewed.discard(server)
            log.info("the clock of {peer} agrees with this server's again", peer=server)

    def _judge(self, record: PeerRecord, now: float) -> Liveness:
        if record.changed_at is not None:
            alive = now - record.changed_at <= self.stale_after
            return Liveness.ALIVE if alive else Liveness.STALE
        if now - record.first_seen > self.stale_after:
            return Liveness.STALE
        return record.state

    def _transition(
        self, record: PeerRecord, state: Liveness, now: float
    ) -> Transition:
        silent_since = (
            record.changed_at if record.changed_at is not None else record.first_seen
        )
        return Transition(
            record.server, state, record.state, record, round(now - silent_since, 3)
        )


def _view(record: PeerRecord, now: float, wall: datetime) -> PeerView:
    def at(moment: float) -> datetime:
        return wall - timedelta(seconds=now - moment)

    changed = record.changed_at
    return PeerView(
        server=record.server,
        state=record.state,
        since=at(record.state_since),
        last_change=at(changed) if changed is not None else None,
        age_seconds=round(now - changed, 3) if changed is not None else None,
        offset_seconds=_rounded(record.offset_seconds),
        peer_timestamp=record.peer_timestamp,
    )


def _rounded(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def transition_event(transition: Transition) -> Event | None:
    """`server.stale` on going stale, `server.recovered` on coming back from stale."""
    if transition.state is Liveness.STALE:
        kind = EventKind.SERVER_STALE
    elif transition.state is Liveness.ALIVE and transition.previous is Liveness.STALE:
        kind = EventKind.SERVER_RECOVERED
    else:
        return None
    server = transition.server
    record = {
        "server": server,
        "liveness": transition.state.value,
        "previous": transition.previous.value,
        "seconds_silent": transition.seconds_silent,
        "last_heartbeat": transition.record.peer_timestamp,
        "offset_seconds": _rounded(transition.record.offset_seconds),
    }
    identity = event_id(kind, server, transition.record.blob)
    return Event(kind, identity, None, heartbeat_path(server), server, record, None)
