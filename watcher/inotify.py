"""watchdog's inotify observer, made to say when it has lost events or watches.

watchdog repairs its own watches after the kernel's event queue overflows, and it
skips subdirectories it cannot watch once `fs.inotify.max_user_watches` is used
up, but in both cases its handlers never hear of it: the checkout would look
quiet while changes went unseen. These subclasses report both conditions.

They rely on watchdog's internals, not its public API: `InotifyWatchGroup` and its
`on_queue_overflow` and `_add_callback` as watchdog 7.1.0 has them, the private
`_inotify_fd`, `_active_callbacks_by_*`, `_emitter_class` and `_emitter_kwargs`.
That is why pyproject.toml pins `watchdog==7.1.0`. Release 7.1.1 replaced the
watch bookkeeping with a tree of nodes and began to report an overflow itself, as
an `EventsLostEvent`; moving the pin means taking overflow from that event and
keeping only the watch-limit report here, checked by tests/test_sources.py.
"""

from __future__ import annotations

import enum
import errno
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from watchdog.observers.inotify import (
    InotifyEmitter,
    InotifyObserver,
    InotifyWatchGroup,
)


class Trouble(enum.Enum):
    OVERFLOW = "overflow"  # the kernel dropped events: everything must be rescanned
    WATCH_LIMIT = "watch-limit"  # some directory could not be watched


def _ignore(trouble: Trouble) -> None:
    """The default reporter of a group built outside this module."""


@dataclass(eq=False)
class ReportingWatchGroup(InotifyWatchGroup):
    report: Callable[[Trouble], None] = _ignore

    def on_queue_overflow(self) -> None:
        super().on_queue_overflow()
        self.report(Trouble.OVERFLOW)

    def _add_callback(self, path: bytes) -> None:
        """As watchdog's, but a subdirectory left unwatched is reported, not hidden."""
        try:
            wd = self._inotify_fd.add_callback(
                path, self.event_mask, self._callback, self._id
            )
        except OSError as error:
            if path == self.path:
                raise
            if error.errno in (errno.ENOSPC, errno.EMFILE):
                self.report(Trouble.WATCH_LIMIT)
            return
        self._active_callbacks_by_path[path] = wd
        self._active_callbacks_by_watch[wd] = path


class ReportingEmitter(InotifyEmitter):
    def __init__(
        self, *args: Any, report: Callable[[Trouble], None], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._report = report

    def on_thread_start(self) -> None:
        self._inotify = ReportingWatchGroup(
            self._inotify_fd,
            os.fsencode(self.watch.path),
            is_recursive=self.watch.is_recursive,
            event_mask=self.get_event_mask_from_filter(),
            follow_symlink=self.watch.follow_symlink,
            report=self._report,
        )


class ReportingInotifyObserver(InotifyObserver):
    """An inotify observer whose watches call `report` on overflow or exhaustion."""

    def __init__(self, report: Callable[[Trouble], None]) -> None:
        super().__init__()
        self._emitter_class = ReportingEmitter
        self._emitter_kwargs["report"] = report

    def is_reading(self) -> bool:
        """Whether the thread reading the inotify descriptor still runs.

        The reader is made on the first scheduled watch; before that there is
        nothing to read, so nothing is missed.
        """
        reader = self._inotify_fd
        return reader is None or bool(reader.is_alive())
