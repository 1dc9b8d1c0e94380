"""The one consumer of hints: compares commits, calls handlers, runs periodic tasks.

Hints from every source wait in one queue. The dispatcher takes what is there,
merges it into one round (many hints, one comparison), follows the shared branch
commit by commit, calls the handlers of each event in order, shows the snapshot
it reached to its listeners, and runs periodic tasks when due. Handlers and tasks
run on this one thread, so they never race each other.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger

from watcher.documents import Snapshot
from watcher.errors import WatcherError
from watcher.events import Event, EventKind
from watcher.follower import Follower
from watcher.hints import Hint, HintKind
from watcher.history import Replayed
from watcher.problems import Problem

Handler = Callable[[Event], None]
SnapshotListener = Callable[[Snapshot], None]
Task = Callable[[], None]
TICK = 1.0
_COMPARING = frozenset({HintKind.REFS, HintKind.RESCAN, HintKind.HOOK, HintKind.REMOTE})


def call_safely(what: str, function: Callable[[], None], **context: str) -> bool:
    """Run one handler or task; whether it succeeded.

    This is the only broad `except` in the product: a failing handler is logged
    with what it was handling and its traceback, and the daemon carries on.
    """
    try:
        function()
    except WatcherError as error:
        logger.bind(**context).error(
            "{what} failed: {error}", what=what, error=str(error)
        )
        return False
    except Exception:
        logger.bind(**context).opt(exception=True).error("{what} failed", what=what)
        return False
    return True


@dataclass
class Periodic:
    name: str
    interval: float
    task: Task
    due: float = 0.0


@dataclass
class Round:
    """What a batch of hints asks for."""

    compare: bool = False
    rescan: bool = False
    reload: bool = False
    stop: bool = False
    files: set[str] = field(default_factory=set)
    events: list[Event] = field(default_factory=list)

    def add(self, hint: Hint | None) -> None:
        if hint is None:
            self.stop = True
            return
        if hint.event is not None:
            self.events.append(hint.event)
        self.compare |= hint.kind in _COMPARING
        self.rescan |= hint.kind is HintKind.RESCAN
        self.reload |= hint.kind is HintKind.RELOAD
        self.files.update(hint.paths)


class Dispatcher:
    """Runs on its own thread until a None arrives in the queue."""

    def __init__(
        self,
        hints: queue.Queue[Hint | None],
        follower: Follower,
        reload: Callable[[], None],
        stopping: threading.Event,
    ) -> None:
        self.hints = hints
        self.stopping = stopping
        self.follower = follower
        self._reload = reload
        self._handlers: list[tuple[str, EventKind | None, Handler]] = []
        self._snapshot_listeners: list[SnapshotListener] = []
        self._noticed: str | None = None
        self.periodics: list[Periodic] = []
        self.last_beat = time.monotonic()
        self.thread = threading.Thread(target=self.run, name="dispatcher", daemon=True)

    def add_handler(
        self, kind: EventKind | None, handler: Handler, group: str = ""
    ) -> None:
        """`kind` None: every kind. `group` lets a set be replaced (on reload)."""
        self._handlers.append((group, kind, handler))

    def replace_group(
        self, group: str, entries: list[tuple[EventKind | None, Handler]]
    ) -> None:
        kept = [entry for entry in self._handlers if entry[0] != group]
        self._handlers = kept + [(group, kind, handler) for kind, handler in entries]

    def add_periodic(self, name: str, interval: float, task: Task) -> None:
        self.periodics.append(Periodic(name, interval, task, time.monotonic()))

    def add_snapshot_listener(self, listener: SnapshotListener) -> None:
        self._snapshot_listeners.append(listener)

    def run(self) -> None:
        while True:
            batch = self._next_round()
            self.last_beat = time.monotonic()
            if batch.reload:
                self._reload()
            if batch.files or batch.rescan:
                self.follower.retry_checkout()
            if batch.compare:
                self.sync()
            elif batch.files:
                self.follower.bring_checkout_along()
            for event in batch.events:
                self.dispatch(event)
            if batch.stop:
                return
            self.run_due_tasks()

    def _next_round(self) -> Round:
        batch = Round()
        try:
            batch.add(self.hints.get(timeout=self._wait()))
            while True:
                batch.add(self.hints.get_nowait())
        except queue.Empty:
            pass
        return batch

    def _wait(self) -> float:
        now = time.monotonic()
        moments = [periodic.due for periodic in self.periodics]
        return max(0.0, min([now + TICK, *moments]) - now)

    def sync(self) -> None:
        """Follow the shared branch to its tip, handling each commit's events."""
        for step in self.follower.steps():
            if self.stopping.is_set():
                return  # this commit and later ones are handled after the restart
            self._handle_commit(step)
            self.follower.done(step)
            self.last_beat = time.monotonic()
        self.follower.bring_checkout_along()
        self._notice_snapshot()

    def _notice_snapshot(self) -> None:
        """Show the listeners the processed snapshot when it is not the last shown."""
        snapshot = self.follower.snapshot
        if snapshot.commit is None or snapshot.commit == self._noticed:
            return
        self._noticed = snapshot.commit
        for listener in list(self._snapshot_listeners):
            what = f"snapshot listener {_handler_name(listener)}"
            call_safely(what, functools.partial(listener, snapshot))

    def _handle_commit(self, step: Replayed) -> None:
        commit = step.commit
        log = logger.bind(commit=commit.sha, author=commit.author)
        log.info(
            "commit {short} seen: {summary} ({count} events)",
            short=commit.short,
            summary=commit.summary,
            count=len(step.events),
        )
        for event in step.events:
            self.dispatch(event)

    def dispatch(self, event: Event) -> None:
        context = {
            "event": event.id,
            "kind": event.kind.value,
            "subject": event.subject,
        }
        logger.bind(**context).debug("event {kind} {subject}", **context)
        if event.kind is EventKind.DOCUMENT_INVALID:
            warn_invalid(event)
        for _group, kind, handler in list(self._handlers):
            if kind is None or kind is event.kind:
                what = f"handler {_handler_name(handler)} for {event.kind.value}"
                call_safely(what, functools.partial(handler, event), **context)

    def run_due_tasks(self) -> None:
        now = time.monotonic()
        for periodic in self.periodics:
            if periodic.due <= now:
                call_safely(
                    f"periodic task {periodic.name}", periodic.task, task=periodic.name
                )
                periodic.due = time.monotonic() + periodic.interval
                self.last_beat = time.monotonic()


def warn_invalid(event: Event) -> None:
    """A broken document on the shared branch is for a person to fix: say where."""
    problem = event.problem or Problem(event.path, "does not pass validation")
    logger.bind(
        path=event.path, commit=event.commit, json_path=problem.json_path
    ).warning(
        "{problem} (commit {short}; its last valid version stays in force); {hint}",
        problem=problem.describe(),
        short=(event.commit or "")[:10],
        hint=problem.hint or "`build-watcher validate --all` lists every problem",
    )


def _handler_name(handler: Callable[..., None]) -> str:
    """`Worker.on_job_queued`, or a configured command's program."""
    return str(
        getattr(handler, "__qualname__", None) or getattr(handler, "name", handler)
    )
