"""Hints: why the dispatcher should look again, from whichever source.

A hint only says that something may have moved; the dispatcher then compares the
commits it knows with the ones it last processed. Many hints, one comparison.
The one exception carries an event the clock made (`Daemon.emit` from another
thread), for the dispatcher to hand to the handlers in order.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from watcher.events import Event


class HintKind(enum.Enum):
    """Why the dispatcher should look again."""

    FILES = "files"  # coordination files were saved in the working tree
    REFS = "refs"  # HEAD or a branch moved in the checkout
    RESCAN = "rescan"  # events were lost: compare commits, re-check every file
    HOOK = "hook"  # a git hook rang
    REMOTE = "remote"  # the periodic fetch moved a remote ref
    RELOAD = "reload"  # SIGHUP: read the configuration again
    EVENT = "event"  # an event made by the clock, to dispatch as it is


@dataclass(frozen=True)
class Hint:
    kind: HintKind
    paths: frozenset[str] = frozenset()
    event: Event | None = None
    at: float = field(default_factory=time.monotonic, compare=False)


HintSink = Callable[[Hint], None]
