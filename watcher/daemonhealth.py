"""The daemon's health, judged by its main thread every second.

Healthy means the dispatcher made progress within `stall_limit` and every source
and background thread still runs. The systemd watchdog is fed only while healthy,
so a wedged daemon is restarted; background tasks (the heartbeat) are held while
the dispatcher stalls, so a wedged daemon also stops beating.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from loguru import logger

from watcher.errors import WatcherError

if TYPE_CHECKING:
    from watcher.daemon import Daemon


def feed_watchdog(daemon: Daemon, was_unhealthy: str) -> str:
    """WATCHDOG=1 only while healthy; a change of health is logged once."""
    reason = unhealthy_reason(daemon)
    if reason and reason != was_unhealthy:
        logger.warning("not feeding the systemd watchdog: {reason}", reason=reason)
    elif was_unhealthy and not reason:
        logger.info("healthy again; feeding the systemd watchdog")
    if not reason:
        daemon.notifier.watchdog()
    return reason


def unhealthy_reason(daemon: Daemon) -> str:
    """Why the daemon is unhealthy, or ''; raises when the dispatcher is gone."""
    if not daemon.dispatcher.thread.is_alive():
        raise WatcherError("the dispatcher thread ended unexpectedly")
    if stalled := stall_reason(daemon):
        return stalled
    if not daemon.filesystem.is_healthy():
        return "the filesystem observer is not listening"
    if not daemon.poller.is_alive():
        return "the remote poller stopped"
    if not daemon.edits.thread.is_alive():
        return "the hand-edit checker stopped"
    for ticker in daemon.tickers:
        if not ticker.is_alive():
            return f"the {ticker.name} thread stopped"
    return ""


def stall_reason(daemon: Daemon) -> str:
    if time.monotonic() - daemon.dispatcher.last_beat > daemon.stall_limit:
        return f"the dispatcher made no progress for {daemon.stall_limit:.0f} s"
    return ""
