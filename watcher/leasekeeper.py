"""Leases inside the daemon: watch every held lock, report lapses, free them.

On every new snapshot of the shared branch this host's watch of each held lock is
extended twice over: the daemon's own `LeaseWatch` (`watcher.clockscan`), which
judges a lapse, and the observation file (`watcher.leases.observe_locks`) that
`locks acquire` and `ExpireLock` consult, so a takeover attempt finds the watch
already running however long ago the last command looked.

A lapse is judged only while the daemon is current (its last fetch worked and it
processed the fetched tip): a server cut off from the remote cannot see renewals.
Each lapse is one `lock.expired` event. A lapsed lease of another server is then
freed with `ExpireLock`, which applies the takeover rule again at the remote tip
and is fenced by the epoch the event saw, so of several daemons that saw the
lapse one frees it and the others find it moot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loguru import logger

from watcher.clockscan import LeaseWatch
from watcher.documents import Snapshot
from watcher.events import Event, EventKind
from watcher.leases import ExpireLock, observe_locks
from watcher.recordstate import lock_holding
from watcher.transaction import OutcomeStatus

if TYPE_CHECKING:
    from watcher.daemon import Daemon

SCAN_FLOOR = 0.5


class LeaseKeeper:
    """The daemon's lease watch. A lock without any lease time of its own is given
    `stale_after`, the lease a running job gets."""

    def __init__(self, daemon: Daemon, watch: LeaseWatch | None = None) -> None:
        config = daemon.config
        self.daemon = daemon
        self.watch = watch or LeaseWatch(config.lease_margin, config.stale_after)

    def install(self) -> None:
        every = max(SCAN_FLOOR, self.daemon.config.poll_interval / 2)
        self.daemon.add_snapshot_listener(self.observe)
        self.daemon.add_periodic("leases", every, self.scan)
        self.daemon.add_handler(EventKind.LOCK_EXPIRED, self.on_expired)

    def observe(self, snapshot: Snapshot) -> None:
        observe_locks(self.daemon.config.state_path, snapshot)
        self.watch.observe(snapshot)

    def scan(self) -> None:
        """Report the leases that lapsed, when the snapshot is known to be current."""
        if not self.daemon.is_current():
            return
        for event in self.watch.scan():
            logger.bind(lock=event.subject, holder=event.actor).warning(
                "lease {lock} of {holder} lapsed: seen unchanged past its expiry",
                lock=event.subject,
                holder=event.actor,
            )
            self.daemon.emit(event)

    def on_expired(self, event: Event) -> None:
        """Free another server's lapsed lease (our own are left to their holder)."""
        holder, epoch = lock_holding(event.record or {})
        if holder is None or holder == self.daemon.node:
            return
        config = self.daemon.config
        operation = ExpireLock(
            event.subject,
            epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else 0,
            config.stale_after,
            config.lease_margin,
            str(config.state_path),
        )
        outcome = self.daemon.transact(operation)
        log = logger.bind(lock=event.subject, holder=holder)
        if outcome.status is OutcomeStatus.DONE:
            log.info("lapsed lease freed: {summary}", summary=outcome.summary)
        elif outcome.status is OutcomeStatus.FAILED:
            log.error("lapsed lease not freed: {why}", why=outcome.reason)
        else:
            log.debug("lapsed lease left: {why}", why=outcome.reason or "queued")


def install(daemon: Daemon) -> None:
    """Watch the leases of the shared branch and free the lapsed ones."""
    LeaseKeeper(daemon).install()
