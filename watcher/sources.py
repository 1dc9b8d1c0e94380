"""Where hints come from: the checkout on disk, through watchdog.

A hint only says that something may have moved; the dispatcher then compares the
commits it knows with the ones it last processed. The filesystem source watches the
working tree and the few git files that show HEAD moved, drops editor and temporary
files, and releases a burst of changes as one batch once it has settled.
"""

from __future__ import annotations

import enum
import errno
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

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
from watcher.gitrepo import run_git
from watcher.inotify import ReportingInotifyObserver, Trouble
from watcher.layout import is_coordination_path
from watcher.settler import Settler


class HintKind(enum.Enum):
    """Why the dispatcher should look again."""

    FILES = "files"  # coordination files were saved in the working tree
    REFS = "refs"  # HEAD or a branch moved in the checkout
    RESCAN = "rescan"  # events were lost: compare commits, re-check every file
    HOOK = "hook"  # a git hook rang
    REMOTE = "remote"  # the periodic fetch moved a remote ref
    WAKE = "wake"  # someone asked for a sync now
    RELOAD = "reload"  # SIGHUP: read the configuration again


@dataclass(frozen=True)
class Hint:
    kind: HintKind
    paths: frozenset[str] = frozenset()
    at: float = field(default_factory=time.monotonic, compare=False)


HintSink = Callable[[Hint], None]

# Only what shows that HEAD or a branch moved; objects, logs and lock files are noise.
_GIT_SIGNALS = re.compile(r"^(HEAD|packed-refs|refs/(heads|remotes)/.+)(?<!\.lock)$")
# Editors' swap, backup, lock and write-test files, and partial downloads.
_EDITOR_FILES = re.compile(
    r"(^\.|^#.*#$|~$|\.sw[a-p]$|\.sw[x-z]$|\.tmp$|\.part$|\.bak$|^4913$|\.orig$)"
)
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
WATCH_LIMIT_HINT = (
    "raise the kernel limit, e.g. `sysctl fs.inotify.max_user_watches=524288` "
    "(persist it in /etc/sysctl.d/); until then the checkout is polled"
)


def is_editor_file(name: str) -> bool:
    """Swap, backup, lock and temporary files that editors and tools leave behind."""
    return bool(_EDITOR_FILES.search(name))


@dataclass(frozen=True)
class WatchPlan:
    """What to watch in one checkout: never all of `.git`, which holds workspaces."""

    worktree: Path
    git_dir: Path
    refs_dir: Path
    excluded: frozenset[Path] = frozenset()

    @classmethod
    def for_checkout(cls, repo: Path, excluded: Iterable[Path] = ()) -> WatchPlan:
        out = run_git(["rev-parse", "--absolute-git-dir", "--git-common-dir"], cwd=repo)
        git_dir, common = out.decode().splitlines()[:2]
        common_dir = (repo / common).resolve()
        return cls(
            repo.resolve(), Path(git_dir), common_dir / "refs", frozenset(excluded)
        )

    def watches(self) -> list[tuple[Path, bool]]:
        """(directory, recursive) pairs: the tree's top level, each directory, git."""
        planned = [(self.worktree, False), (self.git_dir, False)]
        planned.extend((path, True) for path in self.top_directories())
        if self.refs_dir.is_dir():
            planned.append((self.refs_dir, True))
        return planned

    def top_directories(self) -> list[Path]:
        with os.scandir(self.worktree) as entries:
            return sorted(
                Path(entry.path)
                for entry in entries
                if entry.is_dir(follow_symlinks=False)
                and self.is_watched_top(entry.path)
            )

    def is_watched_top(self, path: str) -> bool:
        candidate = Path(path)
        return (
            candidate.parent == self.worktree
            and not candidate.name.startswith(".")
            and candidate != self.git_dir
            and candidate not in self.excluded
        )

    def classify(self, path: str) -> tuple[HintKind, str] | None:
        """The hint a changed absolute path stands for, with its relative path."""
        candidate = Path(path)
        for git_root in (self.git_dir, self.refs_dir.parent):
            if candidate.is_relative_to(git_root):
                relative = candidate.relative_to(git_root).as_posix()
                return (
                    (HintKind.REFS, relative) if _GIT_SIGNALS.match(relative) else None
                )
        if not candidate.is_relative_to(self.worktree):
            return None
        relative = candidate.relative_to(self.worktree).as_posix()
        parts = PurePosixPath(relative).parts
        if any(is_editor_file(part) for part in parts) or not is_coordination_path(
            relative
        ):
            return None
        return HintKind.FILES, relative

    @property
    def index_lock(self) -> Path:
        return self.git_dir / "index.lock"


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
            return all(emitter.is_alive() for emitter in observer.emitters)

    def check(self) -> None:
        """Repair a deaf observer, or raise when it cannot be repaired."""
        if self.is_healthy():
            return
        with self._lock:
            if self._exhausted and not self._polling:
                logger.bind(setting="fs.inotify.max_user_watches").warning(
                    "inotify watches ran out; polling the checkout instead; "
                    + WATCH_LIMIT_HINT
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
                logger.bind(setting="fs.inotify.max_user_watches").warning(
                    "inotify cannot watch {path} ({error}); polling instead; "
                    + WATCH_LIMIT_HINT,
                    path=str(self.plan.worktree),
                    error=error.strerror,
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
