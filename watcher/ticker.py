"""Periodic work on a thread of its own, for what must not wait for the dispatcher.

The heartbeat is the case in point: a dispatcher busy with a slow transaction or
a long handler must not make this server look dead to its peers. A ticker runs
its task every `interval` seconds, except while `hold()` gives a reason not to:
the daemon holds its tickers while the dispatcher makes no progress at all, so a
wedged daemon falls silent and its peers take over its work instead of trusting
a heartbeat that only proves a thread is alive. Holding and resuming are logged
once each; a failing task is logged as a handler's failure is, and the ticker
carries on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from loguru import logger

from watcher.dispatcher import Task, call_safely

STOP_WAIT = 5.0


class Ticker:
    """`task` every `interval` seconds on a thread named `name`, until stopped."""

    def __init__(
        self, name: str, interval: float, task: Task, hold: Callable[[], str]
    ) -> None:
        self.name = name
        self.interval = interval
        self._task = task
        self._hold = hold
        self._held = ""
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking; a run in flight is waited for only briefly."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=STOP_WAIT)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            if self._may_run():
                call_safely(f"task {self.name}", self._task, task=self.name)

    def _may_run(self) -> bool:
        reason = self._hold()
        log = logger.bind(task=self.name)
        if reason and reason != self._held:
            log.warning("{task} held: {reason}", task=self.name, reason=reason)
        elif self._held and not reason:
            log.info("{task} resumed", task=self.name)
        self._held = reason
        return not reason
