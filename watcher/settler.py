"""Bursts of filesystem changes, released as one batch once they settle.

Like watchfiles' debounce: changes gather until none has arrived for one quiet
period (50 ms by default), or until a busy stream has gathered for `longest`
seconds (1.6 s). While git holds `index.lock` (a pull or checkout half-way through) the
batch waits for the lock to go, so the dispatcher never sees half a checkout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from loguru import logger

Change = TypeVar("Change", bound=Hashable)


class Settler(Generic[Change]):
    """Gathers changes from any thread; one thread of its own releases the batches."""

    def __init__(
        self,
        release: Callable[[frozenset[Change]], None],
        *,
        quiet: float = 0.05,
        longest: float = 1.6,
        is_blocked: Callable[[], bool] = lambda: False,
        blocked_limit: float = 30.0,
    ) -> None:
        self._release = release
        self._quiet = quiet
        self._longest = longest
        self._is_blocked = is_blocked
        self._blocked_limit = blocked_limit
        self._pending: set[Change] = set()
        self._last_arrival = 0.0
        self._stopped = False
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="settler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def add(self, change: Change) -> None:
        with self._condition:
            self._last_arrival = time.monotonic()
            self._pending.add(change)
            self._condition.notify_all()

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._release(batch)

    def _next_batch(self) -> frozenset[Change] | None:
        """Wait for a first change, then for quiet; None once stopped."""
        with self._condition:
            while not self._pending and not self._stopped:
                self._condition.wait()
            started = time.monotonic()
            while not self._stopped and not self._is_settled(started):
                pass
            if self._stopped:
                return None
            batch = frozenset(self._pending)
            self._pending.clear()
            return batch

    def _is_settled(self, started: float) -> bool:
        """Wait (condition held) until `quiet` after the last change, then judge."""
        while not self._stopped:
            now = time.monotonic()
            deadline = min(self._last_arrival + self._quiet, started + self._longest)
            if now >= deadline:
                break
            self._condition.wait(deadline - now)
        if not self._is_blocked():
            return True
        waited = time.monotonic() - started
        if waited < self._blocked_limit:
            self._condition.wait(self._quiet)
            return False
        logger.debug("index.lock stayed for {waited:.0f} s; releasing", waited=waited)
        return True
