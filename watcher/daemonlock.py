"""One daemon per checkout, and whether the previous one stopped cleanly.

A daemon holds `<state dir>/daemon.lock` (flock) while it runs, with its pid
written in it; a stop that runs its course empties the file. A pid found there at
start means the previous daemon never got to stop: it was killed, it crashed or
the machine lost power, and a person should know.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from loguru import logger

from watcher.config import Config
from watcher.errors import WatcherError

LOCK_FILE = "daemon.lock"


@contextlib.contextmanager
def exclusive(config: Config) -> Iterator[None]:
    """Hold the checkout's daemon lock; refuse when another daemon holds it."""
    config.state_path.mkdir(parents=True, exist_ok=True)
    path = config.state_path / LOCK_FILE
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WatcherError(
                f"another daemon already runs for {config.repo} ({path} is locked)",
                hint="stop it first, e.g. `systemctl stop build-watcher`",
            ) from None
        handle.seek(0)
        _warn_if_unclean(handle.read().strip())
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)  # an empty lock file marks a clean stop
            handle.flush()


def _warn_if_unclean(previous_pid: str) -> None:
    """A pid left in the lock file: the previous daemon never stopped cleanly."""
    if not previous_pid:
        return
    logger.bind(previous_pid=previous_pid).warning(
        "the previous daemon (pid {pid}) stopped uncleanly (killed, crashed or the "
        "machine lost power); builds it left running are stopped and its jobs are "
        "reported or given back: look in the journal (`journalctl -u build-watcher`) "
        "for why it stopped",
        pid=previous_pid,
    )
