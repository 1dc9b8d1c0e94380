"""What time alone changes: leases that lapse while nobody writes anything.

Clocks differ between servers, and a wall clock can jump. So a lease counts as
expired only when both hold:

- this server has itself watched the lock record stay exactly the same for the
  lease time plus the margin, measured on its own monotonic clock (a live holder
  renews within its lease, which changes the record and restarts the watch);
- the record's own `expires_at` (the holder's clock) has passed on this server's
  wall clock, when the record has one.

The first keeps a fast or jumping wall clock, here or at the holder, from
declaring a live lease dead; the second keeps a watch that began late (after a
restart) from being the only judge. The watch measures only what this server
has seen: a caller cut off from the remote must not scan, since it cannot see
renewals.

Peer heartbeats (server.stale, server.recovered) are judged in `watcher.liveness`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watcher.documents import Snapshot
from watcher.events import Event, EventKind, event_id
from watcher.layout import LOCKS_PATH
from watcher.leases import lock_ttl
from watcher.recordstate import content_digest, lock_holding, lock_records
from watcher.timestamps import now_utc, parse_timestamp


@dataclass
class _Sighting:
    """One version of one held lock record, and when this server first saw it."""

    record: Mapping[str, Any]
    digest: str
    since: float
    commit: str | None
    reported: bool = False


class LeaseWatch:
    """Watches held locks across snapshots; `scan` reports the lapsed ones once."""

    def __init__(
        self,
        margin: float,
        default_ttl: float,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.margin = margin
        self.default_ttl = default_ttl
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._sightings: dict[str, _Sighting] = {}

    def observe(self, snapshot: Snapshot) -> None:
        """Note the held locks of a fresh snapshot; a changed record is watched anew."""
        now = self._monotonic()
        held = {
            name: record
            for name, record in lock_records(snapshot.get(LOCKS_PATH)).items()
            if lock_holding(record)[0]
        }
        for name in set(self._sightings) - set(held):
            del self._sightings[name]
        for name, record in held.items():
            digest = content_digest(record)
            sighting = self._sightings.get(name)
            if sighting is None or sighting.digest != digest:
                self._sightings[name] = _Sighting(record, digest, now, snapshot.commit)

    def unchanged_for(self, name: str) -> float | None:
        """Seconds this server has seen the record unchanged; None when not held."""
        sighting = self._sightings.get(name)
        return None if sighting is None else self._monotonic() - sighting.since

    def scan(self) -> list[Event]:
        """A lock.expired for each lease that has lapsed, once per record version."""
        events = []
        for name in sorted(self._sightings):
            sighting = self._sightings[name]
            if not sighting.reported and self._has_lapsed(sighting):
                sighting.reported = True
                events.append(_expired_event(name, sighting))
        return events

    def _has_lapsed(self, sighting: _Sighting) -> bool:
        required = lock_ttl(sighting.record, self.default_ttl) + self.margin
        if self._monotonic() - sighting.since < required:
            return False
        expires = parse_timestamp(sighting.record.get("expires_at"))
        return expires is None or expires <= self._wall_clock()


def _expired_event(name: str, sighting: _Sighting) -> Event:
    record = sighting.record
    holder, epoch = lock_holding(record)
    kind = EventKind.LOCK_EXPIRED
    state = (holder, epoch, record.get("locked_at"), record.get("expires_at"))
    identity = event_id(kind, name, *state)
    return Event(
        kind, identity, sighting.commit, LOCKS_PATH, name, record, None, actor=holder
    )
