"""The checkout on disk as a source of hints, through watchdog.

The filesystem source watches what its `WatchPlan` names, posts a hint at once
when a ref moves, and releases a burst of working-tree saves as one batch once it
has settled (`watcher.settler`). It keeps itself listening: a kernel queue
overflow asks for a rescan, exhausted inotify watches switch it to polling, and
an observer thread that died is restarted (or the daemon stops, never deaf).
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from loguru import logger
from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from watcher.errors import WatcherError
from watcher.hints import Hint, HintKind, HintSink
from watcher.inotify import ReportingInotifyObserver, Trouble
from watcher.settler import Settler
from watcher.watchplan import WatchPlan

_WATCHED_EVENTS = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileMovedEvent,
    FileDeletedEvent,
    DirCreatedEvent,
    DirMovedEvent,
    DirDeletedEvent,
]
_RESTARTS_ALLOWED = 5
_RESTART_WINDOW = 60.0
WATCHES = "fs.inotify.max_user_watches"
INSTANCES = "fs.inotify.max_user_instances"


def limit_hint(setting: str) -> str:
    """What to raise when inotify runs out, and what happens meanwhile."""
    example = 524288 if setting == WATCHES else 1024
    return (
        f"raise the kernel limit, e.g. `sysctl {setting}={example}` (persist it in "
        "/etc/sysctl.d/); until then the checkout is polled"
    )


class _Forwarder(FileSystemEventHandler):
    def __init__(self, receive: Callable[[FileSystemEvent], None]) -> None:
        self._receive = receive

    def dispatch(self, event: FileSystemEvent) -> None:
        self._receive(event)


ObserverFactory = Callable[[Callable[[Trouble], None]], BaseObserver]


class FilesystemSource:
    """The checkout on disk as settled batches of hints, by inotify or polling."""

    def __init__(
        self,
        plan: WatchPlan,
        sink: HintSink,
        *,
        quiet: float = 0.05,
        poll_interval: float = 1.0,
        inotify_observer: ObserverFactory = ReportingInotifyObserver,
    ) -> None:
        self.plan = plan
        self._sink = sink
        self._poll_interval = poll_interval
        self._inotify_observer = inotify_observer
        self._settler: Settler[str] = Settler(
            self._release, quiet=quiet, is_blocked=self._is_locked
        )
        self._lock = threading.RLock()
        self._observer: BaseObserver | None = None
        self._polling = False
        self._exhausted = False
        self._restarts: list[float] = []

    @property
    def is_polling(self) -> bool:
        return self._polling

    def start(self) -> None:
        self._settler.start()
        with self._lock:
            self._observer = self._start_observer()

    def stop(self) -> None:
        with self._lock:
            observer, self._observer = self._observer, None
        if observer is not None:
            _stop_observer(observer)
        self._settler.stop()

    def is_healthy(self) -> bool:
        """Every watch still listening (watches on deleted directories aside)."""
        with self._lock:
            observer = self._observer
            if observer is None or not observer.is_alive() or self._exhausted:
                return False
            self._drop_watches_of_deleted_directories(observer)
            reading = getattr(observer, "is_reading", lambda: True)()
            return reading and all(emitter.is_alive() for emitter in observer.emitters)

    def check(self) -> None:
        """Repair a deaf observer, or raise when it cannot be repaired."""
        if self.is_healthy():
            return
        with self._lock:
            if self._exhausted and not self._polling:
                logger.bind(setting=WATCHES).warning(
                    "inotify watches ran out; polling the checkout instead; {hint}",
                    hint=limit_hint(WATCHES),
                )
                self._polling = True
            else:
                self._count_restart()
                logger.warning("the filesystem observer stopped; restarting it")
            self._restart()

    def _restart(self) -> None:
        if self._observer is not None:
            _stop_observer(self._observer)
        self._exhausted = False
        self._observer = self._start_observer()
        self._sink(Hint(HintKind.RESCAN))

    def _count_restart(self) -> None:
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < _RESTART_WINDOW]
        self._restarts.append(now)
        if len(self._restarts) > _RESTARTS_ALLOWED:
            raise WatcherError(
                f"the filesystem observer stopped {len(self._restarts)} times within "
                f"{_RESTART_WINDOW:.0f} s while watching {self.plan.worktree}",
                hint="check the checkout's filesystem and the logs above; the daemon "
                "exits rather than run without noticing changes",
            )

    def _start_observer(self) -> BaseObserver:
        if not self._polling:
            try:
                return self._schedule_all(self._inotify_observer(self._on_trouble))
            except OSError as error:
                if error.errno not in (errno.ENOSPC, errno.EMFILE):
                    raise
                setting = WATCHES if error.errno == errno.ENOSPC else INSTANCES
                logger.bind(setting=setting).warning(
                    "inotify cannot watch {path} ({error}); polling instead; {hint}",
                    path=str(self.plan.worktree),
                    error=error.strerror,
                    hint=limit_hint(setting),
                )
                self._polling = True
        return self._schedule_all(PollingObserver(timeout=self._poll_interval))

    def _schedule_all(self, observer: BaseObserver) -> BaseObserver:
        forwarder = _Forwarder(self._on_event)
        try:
            for path, recursive in self.plan.watches():
                observer.schedule(
                    forwarder,
                    str(path),
                    recursive=recursive,
                    event_filter=_WATCHED_EVENTS,
                )
            observer.start()
        except OSError:
            _stop_observer(observer)
            raise
        return observer

    def _on_trouble(self, trouble: Trouble) -> None:
        """Called from watchdog's reader thread; repairs happen in `check`."""
        if trouble is Trouble.OVERFLOW:
            logger.warning(
                "the kernel's inotify queue overflowed; rescanning the checkout"
            )
            self._sink(Hint(HintKind.RESCAN))
        else:
            self._exhausted = True

    def _on_event(self, event: FileSystemEvent) -> None:
        for raw in (event.src_path, event.dest_path):
            path = os.fsdecode(raw)
            if not path:
                continue
            if event.is_directory:
                self._on_directory(event, path)
            elif (found := self.plan.classify(path)) is None:
                continue
            elif found[0] is HintKind.REFS:
                # A ref moves by an atomic rename and the comparison reads git
                # objects, not files: nothing to settle, so no reason to wait.
                self._sink(Hint(HintKind.REFS))
            else:
                self._settler.add(found[1])

    def _on_directory(self, event: FileSystemEvent, path: str) -> None:
        appeared = isinstance(event, DirCreatedEvent) or (
            isinstance(event, DirMovedEvent) and os.fsdecode(event.dest_path) == path
        )
        if appeared and self.plan.is_watched_top(path):
            self._watch_new_top(Path(path))

    def _watch_new_top(self, directory: Path) -> None:
        """A new top-level directory (a new server): watch it, then look inside."""
        with self._lock:
            if self._observer is None:
                return
            try:
                self._observer.schedule(
                    _Forwarder(self._on_event),
                    str(directory),
                    recursive=True,
                    event_filter=_WATCHED_EVENTS,
                )
            except OSError as error:
                logger.warning(
                    "cannot watch {path}: {error}", path=str(directory), error=error
                )
                self._exhausted = error.errno in (errno.ENOSPC, errno.EMFILE)
                return
        for root, _dirs, files in os.walk(directory):
            for name in files:
                found = self.plan.classify(os.path.join(root, name))
                if found is not None and found[0] is HintKind.FILES:
                    self._settler.add(found[1])

    def _drop_watches_of_deleted_directories(self, observer: BaseObserver) -> None:
        for emitter in list(observer.emitters):
            if not emitter.is_alive() and not os.path.isdir(emitter.watch.path):
                observer.unschedule(emitter.watch)

    def _is_locked(self) -> bool:
        return self.plan.index_lock.exists()

    def _release(self, batch: frozenset[str]) -> None:
        logger.debug("settled: {paths}", paths=sorted(batch))
        self._sink(Hint(HintKind.FILES, batch))


def _stop_observer(observer: BaseObserver) -> None:
    observer.stop()
    if observer.is_alive():
        observer.join(timeout=5)
