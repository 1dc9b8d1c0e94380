"""The remote as a source of hints: one fetch every poll interval, with jitter.

One `git fetch` brings the coordination branch and every heartbeat branch. The
refs are compared before and after, so a fetch that brought nothing costs one
round trip and posts no hint. Losing and regaining the remote are state changes
and are logged once each, not at every poll. After every fetch that worked, the
`reached` callback runs on this thread (the daemon drains its offline queue
there, so a slow remote never holds up the dispatcher).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from loguru import logger

from watcher.config import Config
from watcher.errors import WatcherError
from watcher.gitrepo import git_error, run_git
from watcher.heartbeat import fetch_refspec, tracking_prefix
from watcher.hints import Hint, HintKind, HintSink
from watcher.remoterefs import RemoteUnreachable, fetch_refs, remote_failure

JITTER = 0.1
STOP_WAIT = 5.0


def fetch_remote(config: Config) -> bool:
    """Fetch the branch and the heartbeat branches; whether any of their refs moved."""
    before = _remote_refs(config)
    refspecs = [f"+refs/heads/{config.branch}:{config.tracking_ref}"]
    refspecs.append(fetch_refspec(config.remote))
    completed = fetch_refs(config.repo, config.remote, refspecs, prune=True)
    if completed.returncode != 0:
        raise remote_failure(git_error(completed), config.remote)
    return _remote_refs(config) != before


def _remote_refs(config: Config) -> bytes:
    wanted = [config.tracking_ref, tracking_prefix(config.remote)]
    return run_git(
        ["for-each-ref", "--format=%(objectname) %(refname)", *wanted], config.repo
    )


def jittered(interval: float) -> float:
    """The interval give or take 10%, so a fleet started together spreads out."""
    return interval * random.uniform(1 - JITTER, 1 + JITTER)


class RemotePoller:
    """A thread that fetches every poll interval, or at once when woken."""

    def __init__(
        self,
        config: Callable[[], Config],
        sink: HintSink,
        reached: Callable[[], None] = lambda: None,
    ) -> None:
        self._config = config
        self._sink = sink
        self._reached = reached
        self._woken = threading.Event()
        self._stopped = threading.Event()
        self._failure: str | None = None
        self.reachable = False  # whether the last fetch worked
        self.last_poll = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._woken.set()
        if self._thread.is_alive():
            # A fetch in flight is not waited for: it changes only remote refs.
            self._thread.join(timeout=STOP_WAIT)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def fetch_now(self) -> None:
        self._woken.set()

    def poll(self) -> bool:
        """One fetch; a hint when something moved. Failures are logged, not raised."""
        config = self._config()
        try:
            moved = fetch_remote(config)
        except WatcherError as error:
            self.reachable = False
            self._note_failure(error)
            return False
        self.reachable = True
        self._note_failure(None)
        if moved:
            logger.bind(remote=config.remote).debug("the remote moved")
            self._sink(Hint(HintKind.REMOTE))
        self._reached()
        return moved

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._woken.wait(jittered(self._config().poll_interval))
            self._woken.clear()
            if self._stopped.is_set():
                return
            self.poll()
            self.last_poll = time.monotonic()

    def _note_failure(self, error: WatcherError | None) -> None:
        """Log when fetching starts failing, fails differently, or works again."""
        log = logger.bind(remote=self._config().remote)
        if error is None:
            if self._failure is not None:
                log.info("the remote is reachable again")
            self._failure = None
            return
        if error.message != self._failure:
            offline = isinstance(error, RemoteUnreachable)
            log.warning(
                "{what}: {error}",
                what="the remote cannot be reached; working offline"
                if offline
                else "fetching the remote failed",
                error=error.message,
            )
        self._failure = error.message
