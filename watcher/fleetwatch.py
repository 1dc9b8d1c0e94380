"""The daemon's side of liveness: beat, watch peers, publish status and health.

Registered by `watcher.liveness.install`:

- startup: restore the last saved view (so a restart repeats no `server.stale`),
  set this server's status (keeping a resting one) and beat once;
- every `heartbeat_interval`, on a thread of its own: replace the heartbeat
  branch, so a dispatcher held up by a slow transaction or a long handler does
  not make this server look dead to its peers;
- every `heartbeat_interval`, on the dispatcher: write the main copy of the
  heartbeat when it is due (at most every 30 minutes), a transaction like any;
- every scan interval (half the shorter of the poll and heartbeat intervals):
  look at the fetched heartbeat branches, judge peers, dispatch `server.stale` /
  `server.recovered`, save the view for commands, and commit the dashboard when
  the fleet's health changed;
- shutdown: status `offline`.

While this server cannot publish its own heartbeat, the remote is out of reach
and peers' heartbeats cannot be seen to change either, so peers are not judged:
an observer that is cut off does not declare the whole fleet dead.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from loguru import logger

from watcher.dashboard import DashboardUpdate, health_document, health_signature
from watcher.fleet import compute_fleet
from watcher.heartbeat import Heartbeat, read_heartbeats
from watcher.judgement import VIEW_FILE, judge_watch, load_view, save_view, view_of
from watcher.layout import BUILD_CONFIG_PATH, DASHBOARD_PATH
from watcher.liveness import Liveness, PeerWatch, Transition, transition_event
from watcher.serverstatus import (
    HeartbeatPublisher,
    StatusUpdate,
    capabilities,
    system_metrics,
)
from watcher.timestamps import format_timestamp
from watcher.transaction import OutcomeStatus

if TYPE_CHECKING:
    from watcher.daemon import Daemon

SCAN_FLOOR = 0.5
RECENT_EVENTS = 20


class FleetWatch:
    """Heartbeats out, heartbeats in, for one daemon."""

    def __init__(self, daemon: Daemon) -> None:
        config = daemon.config
        self.daemon = daemon
        self.node = daemon.node
        self.watch = PeerWatch(self.node, config.stale_after)
        self.publisher = HeartbeatPublisher(
            config, daemon.transact, lambda: daemon.snapshot
        )
        self.view_path = config.state_path / VIEW_FILE
        self.heartbeats: dict[str, Heartbeat] = {}
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_EVENTS)
        self.published: tuple[Any, ...] | None = None
        self.refreshed: dict[str, Any] | None = None

    def install(self) -> None:
        config = self.daemon.config
        scan_every = max(
            SCAN_FLOOR, min(config.poll_interval, config.heartbeat_interval) / 2
        )
        every = config.heartbeat_interval
        self.daemon.add_startup(self.start)
        self.daemon.add_background("heartbeat", every, self.publish)
        self.daemon.add_periodic("main heartbeat", every, self.refresh_main)
        self.daemon.add_periodic("liveness", scan_every, self.scan)
        self.daemon.add_shutdown(self.stop)

    def start(self) -> None:
        saved = load_view(self.view_path)
        if saved is not None:
            self.watch.restore(saved.peers)
            self.recent.extend(dict(item) for item in saved.recent_events)
        self.report_status("idle", keep_resting=True)
        self.beat()

    def beat(self) -> None:
        self.publisher.beat()
        self.refreshed = self.publisher.latest

    def publish(self) -> None:
        """One beat on the heartbeat branch only (the heartbeat thread's task)."""
        self.publisher.publish()

    def refresh_main(self) -> None:
        """The main copy of the last heartbeat published, when it is due."""
        latest = self.publisher.latest
        if latest is not None and latest is not self.refreshed:
            self.refreshed = latest
            self.publisher.refresh_main(latest)

    def scan(self) -> None:
        """Look at the heartbeat branches as last fetched and judge the peers."""
        if not self.publisher.reachable:
            return
        config = self.daemon.config
        self.heartbeats = read_heartbeats(config.repo, config.remote, self.heartbeats)
        for transition in self.watch.observe(self.heartbeats):
            self.announce(transition)
        save_view(self.view_path, view_of(self.watch, list(self.recent)))
        self.refresh_dashboard()

    def stop(self) -> None:
        self.report_status("offline")
        view = view_of(self.watch, list(self.recent), running=False)
        save_view(self.view_path, view)

    def report_status(self, status: str, *, keep_resting: bool = False) -> None:
        config = self.daemon.config
        update = StatusUpdate(
            self.node,
            status,
            system=system_metrics(config.repo),
            capabilities=capabilities(
                config, self.daemon.snapshot.get(BUILD_CONFIG_PATH)
            ),
            keep_resting=keep_resting,
        )
        outcome = self.daemon.transact(update)
        logger.bind(outcome=outcome.status.value).debug(
            "status reported: {s}", s=status
        )

    def announce(self, transition: Transition) -> None:
        log = logger.bind(server=transition.server, silent=transition.seconds_silent)
        if transition.state is Liveness.STALE:
            log.warning(
                "{server} is stale: no heartbeat change seen", server=transition.server
            )
        else:
            log.info(
                "{server} is {state}",
                server=transition.server,
                state=transition.state.value,
            )
        event = transition_event(transition)
        if event is None:
            return
        when = format_timestamp(self.watch.wall())
        self.recent.appendleft(
            {"kind": event.kind.value, "subject": event.subject, "when": when}
        )
        self.daemon.emit(event)

    def refresh_dashboard(self) -> None:
        """Commit the dashboard when the health this daemon sees has changed.

        Not before this daemon has watched for a whole allowance (every live peer
        has been seen to change by then), so a start does not flip the dashboard
        through "unknown".
        """
        if not self.watch.is_settled():
            return
        snapshot = self.daemon.snapshot
        judgement = judge_watch(self.watch)
        fleet = compute_fleet(
            snapshot,
            self.heartbeats,
            judgement,
            self.node,
            self.watch.wall(),
            recent_messages=0,
        )
        document = health_document(fleet)
        signature = health_signature(document)
        if signature in (
            self.published,
            health_signature(snapshot.get(DASHBOARD_PATH)),
        ):
            return
        outcome = self.daemon.transact(DashboardUpdate(document))
        if outcome.status in (OutcomeStatus.DONE, OutcomeStatus.MOOT):
            self.published = signature
