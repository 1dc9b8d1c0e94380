"""The daemon: sources, one dispatcher, feature modules, and its life under systemd.

Start: take the checkout's daemon lock, load progress, install the feature
modules, start listening (filesystem, hooks), run startup tasks, try a first
sync (an unreachable remote is a warning), start the dispatcher and the
background tasks (the heartbeat, which a busy dispatcher must not delay), then
tell systemd READY=1. While running, the main thread checks the loop's health
every second and feeds the systemd watchdog only while the dispatcher makes
progress and every source and background thread still runs; background tasks are
held while the dispatcher makes none, so a wedged daemon also stops beating.
SIGTERM or Ctrl-C: stop taking work, give running handlers `kill_grace` seconds,
stop them, run the shutdown tasks, exit 0. SIGHUP reloads the configuration and
keeps the old one if the new one is wrong.
"""

from __future__ import annotations

import contextlib
import importlib
import queue
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from types import FrameType

from loguru import logger

from watcher import outbox
from watcher.commandhandler import CommandHandler, build_handlers
from watcher.config import Config
from watcher.daemonhealth import feed_watchdog, stall_reason
from watcher.daemonlock import exclusive
from watcher.dispatcher import Dispatcher, Handler, SnapshotListener, Task, call_safely
from watcher.documents import Snapshot
from watcher.edits import EditChecker, EditWatch
from watcher.errors import WatcherError
from watcher.events import Event, EventKind
from watcher.follower import Follower
from watcher.hints import Hint, HintKind
from watcher.poller import RemotePoller
from watcher.progress import Progress, progress_path
from watcher.sdnotify import SystemdNotifier
from watcher.sources import FilesystemSource
from watcher.ticker import Ticker
from watcher.transaction import Operation, Outcome, flush_outbox, transact
from watcher.wake import WakeListener
from watcher.watchplan import WatchPlan

# Feature modules, each with `install(daemon)`; one missing is a broken installation.
FEATURE_MODULES = (
    "watcher.worker",
    "watcher.responder",
    "watcher.liveness",
    "watcher.leasekeeper",
)
HEALTH_INTERVAL = 1.0
STALL_LIMIT = 120.0
CONFIG_GROUP = "configured"


class Daemon:
    """One checkout's daemon. Feature modules register through the `add_*` methods."""

    def __init__(
        self,
        config: Config,
        *,
        load_config: Callable[[], Config] | None = None,
        features: Sequence[str] = FEATURE_MODULES,
        settle_quiet: float = 0.05,
        notifier: SystemdNotifier | None = None,
        stall_limit: float = STALL_LIMIT,
    ) -> None:
        self.config = config
        self.node = config.require_node()
        self.stopping = threading.Event()
        self._load_config = load_config
        self._features = features
        self._hints: queue.Queue[Hint | None] = queue.Queue()
        self._startup: list[Task] = []
        self._shutdown: list[Task] = []
        self.tickers: list[Ticker] = []
        self._own_commits: deque[str] = deque(maxlen=256)
        self._reload_requested = threading.Event()
        self._commands: list[CommandHandler] = []
        self.notifier = notifier or SystemdNotifier()
        self.stall_limit = stall_limit
        progress = Progress.load(progress_path(config.state_path, self.node), self.node)
        self.follower = Follower(lambda: self.config, progress)
        self.edits = EditWatch(EditChecker(config.repo, recheck_after=settle_quiet))
        self.dispatcher = Dispatcher(
            self._hints, self.follower, self.reload, self.stopping
        )
        self.poller = RemotePoller(lambda: self.config, self.post, self._flush_outbox)
        excluded = (config.state_path, config.workspace_path)
        plan = WatchPlan.for_checkout(config.repo, excluded)
        self.filesystem = FilesystemSource(plan, self.post, quiet=settle_quiet)
        self.listener = WakeListener(config.state_path, self._on_wake)

    # The contract feature modules use.

    @property
    def snapshot(self) -> Snapshot:
        """The documents at the last processed commit of the shared branch."""
        return self.follower.snapshot

    def add_handler(self, kind: EventKind, handler: Handler) -> None:
        self.dispatcher.add_handler(kind, handler)

    def add_periodic(self, name: str, interval: float, task: Task) -> None:
        self.dispatcher.add_periodic(name, interval, task)

    def add_snapshot_listener(self, listener: SnapshotListener) -> None:
        """`listener(snapshot)` on the dispatcher thread whenever it processed a
        new tip of the shared branch (and once for the state loaded at start)."""
        self.dispatcher.add_snapshot_listener(listener)

    def add_background(self, name: str, interval: float, task: Task) -> None:
        """`task` every `interval` seconds on a thread of its own, for work that must
        not wait for a busy dispatcher (the heartbeat). It must be thread-safe: it
        runs beside the handlers. Held while the dispatcher makes no progress."""
        self.tickers.append(Ticker(name, interval, task, lambda: stall_reason(self)))

    def add_startup(self, task: Task) -> None:
        self._startup.append(task)

    def add_shutdown(self, task: Task) -> None:
        self._shutdown.append(task)

    def transact(self, operation: Operation, *, offline_ok: bool = True) -> Outcome:
        """A transaction on the shared branch; its commit is noted as our own.

        `offline_ok` False: fail instead of queueing when the remote is away (a
        claim replayed later would hold a job nobody here runs).
        """
        outcome = transact(self.config, operation, offline_ok=offline_ok)
        if outcome.commit is not None and outcome.is_done:
            self._own_commits.append(outcome.commit)
            self.post(Hint(HintKind.REFS))
        return outcome

    def _flush_outbox(self) -> None:
        """Land what waits in the offline queue (after each fetch that worked).

        Runs on the poller's thread; it stops at the first entry the remote is
        unreachable for, and an empty queue costs one directory listing.
        """
        config = self.config
        if not outbox.has_entries(config):
            return
        try:
            outcomes = flush_outbox(config)
        except WatcherError as error:
            logger.warning("the offline queue stays: {error}", error=error.message)
            return
        self._own_commits.extend(o.commit for o in outcomes if o.is_done and o.commit)
        if outcomes:
            self.post(Hint(HintKind.REFS))

    def is_current(self) -> bool:
        """Whether the last fetch worked and the processed snapshot is its tip.

        What only time changes (a lease lapsing) may be judged only then: a
        server cut off from the remote cannot see the renewals it would miss.
        """
        return self.poller.reachable and self.snapshot.commit == self.follower.tip()

    def is_own(self, event: Event) -> bool:
        """Whether the event comes from a commit this daemon pushed."""
        return event.commit is not None and event.commit in self._own_commits

    def emit(self, event: Event) -> None:
        """Hand an event the clock made (not a commit) to the handlers.

        They run on the dispatcher thread, in order with the events from commits
        and isolated from each other as those are; from any other thread the event
        waits in the dispatcher's queue.
        """
        if threading.current_thread() is self.dispatcher.thread:
            self.dispatcher.dispatch(event)
        else:
            self.post(Hint(HintKind.EVENT, event=event))

    def wake(self) -> None:
        self.poller.fetch_now()

    def post(self, hint: Hint) -> None:
        if hint.kind is HintKind.RESCAN:
            self.edits.rescan()
        elif hint.kind is HintKind.FILES:
            self.edits.saved(hint.paths)
        self._hints.put(hint)

    def stop(self) -> None:
        self.stopping.set()

    # Life.

    def run(self) -> int:
        """Run until stopped; 0 after a clean stop. Raises WatcherError when deaf."""
        with exclusive(self.config), self._signals():
            # Before anything runs: a handler or reply rule the configuration
            # gets wrong is refused without a single write to the shared branch.
            self._install_commands(self.config)
            self._install_features()
            try:
                self._start()
                self._watch_health()
            finally:
                self._finish()
        return 0

    def _start(self) -> None:
        self.listener.start()
        self.edits.start()
        self.filesystem.start()
        self._first_sync()
        self.poller.start()
        self.dispatcher.thread.start()
        for ticker in self.tickers:
            ticker.start()
        where = f"{self.node} watching {self.config.repo}"
        self.notifier.ready(where)
        logger.bind(repo=str(self.config.repo)).info(
            "daemon ready: {where}", where=where
        )

    def _first_sync(self) -> None:
        """Fetch, load the processed state, run startup tasks, then catch up."""
        self.poller.poll()
        self.follower.begin()
        for task in self._startup:
            call_safely("startup task", task)
        self.dispatcher.sync()
        self.edits.rescan()

    def _install_features(self) -> None:
        """Every feature module's `install(self)`; a daemon without one of its
        features (no jobs, no replies, no heartbeat) must not start."""
        for name in self._features:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as error:
                raise WatcherError(
                    f"the feature module {name} cannot be imported: {error}",
                    hint="reinstall build-watcher (`pip install --force-reinstall "
                    "build-watcher`)",
                ) from error
            install = getattr(module, "install", None)
            if install is None:
                raise WatcherError(f"the feature module {name} has no install()")
            install(self)

    def _install_commands(self, config: Config) -> None:
        built = build_handlers(config)
        self._commands = [handler for _, handler in built]
        self.dispatcher.replace_group(CONFIG_GROUP, list(built))

    def _watch_health(self) -> None:
        interval = min(
            HEALTH_INTERVAL, self.notifier.watchdog_interval or HEALTH_INTERVAL
        )
        unhealthy = ""
        while not self.stopping.wait(interval):
            if self._reload_requested.is_set():
                self._reload_requested.clear()
                self.post(Hint(HintKind.RELOAD))
            self.filesystem.check()
            unhealthy = feed_watchdog(self, unhealthy)

    def _finish(self) -> None:
        """Stop taking work, let handlers finish, run the shutdown tasks."""
        self.stopping.set()
        self.notifier.stopping()
        logger.info("stopping")
        for ticker in self.tickers:
            ticker.stop()
        self.listener.stop()
        self.filesystem.stop()
        self.poller.stop()
        self.edits.stop()
        self._hints.put(None)
        self._wait_for_handlers()
        for task in self._shutdown:
            call_safely("shutdown task", task)
        logger.info("stopped")

    def _wait_for_handlers(self) -> None:
        thread = self.dispatcher.thread
        if not thread.is_alive():
            return
        thread.join(timeout=self.config.kill_grace)
        if thread.is_alive():
            logger.warning(
                "handlers still running after {grace:.0f} s; stopping them",
                grace=self.config.kill_grace,
            )
            for command in self._commands:
                command.terminate()
            thread.join(timeout=self.config.kill_grace)
        if thread.is_alive():
            logger.error("a handler did not stop; shutting down around it")

    def reload(self) -> None:
        """Read the configuration again (SIGHUP); keep the old one if it is wrong."""
        if self._load_config is None:
            return
        try:
            config = self._load_config()
            _check_reloadable(self.config, config)
            self._install_commands(config)
        except WatcherError as error:
            logger.error(
                "configuration not reloaded, the old one stays: {error}",
                error=str(error),
            )
            return
        self.config = config
        logger.bind(source=config.source).info("configuration reloaded")

    def _on_wake(self, reason: str) -> None:
        self.post(Hint(HintKind.HOOK))

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        wanted = {signal.SIGTERM: self._on_stop, signal.SIGINT: self._on_stop}
        wanted[signal.SIGHUP] = self._on_hangup
        saved = {
            number: signal.signal(number, handler) for number, handler in wanted.items()
        }
        try:
            yield
        finally:
            for number, handler in saved.items():
                signal.signal(number, handler)

    def _on_stop(self, number: int, frame: FrameType | None) -> None:
        # Only set a flag: the main thread may be inside a lock a handler would need.
        self.stopping.set()

    def _on_hangup(self, number: int, frame: FrameType | None) -> None:
        self._reload_requested.set()


def _check_reloadable(old: Config, new: Config) -> None:
    for name in ("repo", "node", "remote", "branch", "state_dir"):
        if getattr(old, name) != getattr(new, name):
            raise WatcherError(
                f"`{name}` changed from {getattr(old, name)!r} "
                f"to {getattr(new, name)!r}",
                hint="a change of checkout, identity or remote needs a restart",
            )
