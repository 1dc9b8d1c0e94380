"""Following the shared branch: from the last processed commit to the fetched tip.

The state the daemon acts on is the remote branch as last fetched, read from git
objects. The follower replays the first-parent commits in between one at a time
(`watcher.history.replay`), and the caller marks each commit done once its events
were handled, so a restart neither loses nor repeats events (a crash between the
two repeats that one commit's events).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from loguru import logger

from watcher.config import Config
from watcher.documents import BlobCache, Snapshot, read_snapshot
from watcher.errors import WatcherError
from watcher.gitrepo import resolve_commit
from watcher.history import Replayed, is_ancestor, replay
from watcher.progress import Progress
from watcher.worktree import fast_forward

# Seconds before an attempt to bring the checkout along that changed nothing is
# made again for the same HEAD and tip, when no change of the working tree was seen.
CHECKOUT_RETRY = 60.0


class Follower:
    """The last processed commit and the documents there."""

    def __init__(self, config: Callable[[], Config], progress: Progress) -> None:
        self._config = config
        self.progress = progress
        self.snapshot = Snapshot(None)
        self._cache = BlobCache(capacity=512)
        self._tried: tuple[str | None, str | None] = (None, None)
        self._tried_at = 0.0

    def tip(self) -> str | None:
        return resolve_commit(self._config().repo, self._config().tracking_ref)

    def begin(self) -> None:
        """Load the processed state, or take the tip as old news on a first start."""
        config = self._config()
        last = self.progress.last_commit
        if last is not None:
            try:
                self.snapshot = read_snapshot(config.repo, last, cache=self._cache)
                return
            except WatcherError:
                logger.bind(commit=last).warning(
                    "the last processed commit is gone from the repository; "
                    "starting again from the tip"
                )
        self._start_at_tip()

    def _start_at_tip(self) -> None:
        tip = self.tip()
        if tip is None:
            return
        self.snapshot = read_snapshot(self._config().repo, tip, cache=self._cache)
        self.progress.start_at(self.snapshot)
        self.progress.save()
        logger.bind(commit=tip).info(
            "first start: the history before {commit} is not replayed", commit=tip[:10]
        )

    def steps(self) -> Iterator[Replayed]:
        """Each commit after the processed one up to the tip, with its events."""
        tip = self.tip()
        if tip is None or tip == self.snapshot.commit:
            return
        if self.snapshot.commit is None:
            self._start_at_tip()
            return
        config = self._config()
        yield from replay(
            config.repo,
            config.node,
            since=self.snapshot.commit,
            until=tip,
            memory=self.progress,
            cache=self._cache,
        )

    def done(self, step: Replayed) -> None:
        self.snapshot = step.snapshot
        self.progress.record(step.commit.sha)
        self.progress.save()

    def bring_checkout_along(self) -> None:
        """Fast-forward the checkout to the processed tip when HEAD is behind it.

        An attempt that changed nothing (a hand edit in the way) is not repeated
        for the same HEAD and tip until the working tree changes
        (`retry_checkout`) or `CHECKOUT_RETRY` seconds have passed.
        """
        config = self._config()
        tip = self.snapshot.commit
        head = resolve_commit(config.repo, "HEAD")
        if tip is None or head == tip or not self._is_due((head, tip)):
            return
        self._tried, self._tried_at = (head, tip), time.monotonic()
        if head is None or is_ancestor(config.repo, head, tip):
            fast_forward(config.repo, config.branch, tip)
        else:
            _explain_not_behind(config, head, tip)

    def retry_checkout(self) -> None:
        """The working tree changed: what stopped the last attempt may be gone."""
        self._tried = (None, None)

    def _is_due(self, attempt: tuple[str | None, str | None]) -> bool:
        if attempt != self._tried:
            return True
        return time.monotonic() - self._tried_at >= CHECKOUT_RETRY


def _explain_not_behind(config: Config, head: str, tip: str) -> None:
    """Why a HEAD that is not behind the tip is left alone, in the right words."""
    log = logger.bind(head=head, tip=tip)
    on_branch = resolve_commit(config.repo, f"refs/heads/{config.branch}") == head
    if not on_branch:
        log.info(
            "the checkout is not on {branch}; it is left where it is",
            branch=config.branch,
        )
    elif is_ancestor(config.repo, tip, head):
        log.info(
            "the checkout has commits the remote lacks; nothing is acted on until "
            "they are pushed"
        )
    else:
        log.warning(
            "the checkout's {branch} and the remote's have diverged: each has commits "
            "the other lacks; the checkout is left alone (push or rebase the local "
            "commits, or reset {branch} to the remote's)",
            branch=config.branch,
        )
