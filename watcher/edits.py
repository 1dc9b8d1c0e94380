"""Hand edits in the working tree: checked when saved, reported when broken.

Nothing is dispatched from an edit that is not committed and shared; a broken file
is only reported (file, line, column, JSON path, hint) so that the person who
made it can fix it before the pre-commit hook refuses it. A file that matches its
committed version needs no look: the commit was judged already.

A file that fails to parse may be half-written: it is checked again after another
quiet period (the filesystem source's settling time) and reported only if the
same content is still broken. Files are
judged with the legacy profile, as the daemon reads the repository; the hook holds
changed records to the strict one when they are committed.

The daemon runs the checks on a thread of their own (`EditWatch`), not the
dispatcher's: a dispatcher busy with a long, contended transaction would look at
a broken file only after the person had already undone it, and say nothing.
"""

from __future__ import annotations

import functools
import hashlib
import os
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from watcher.dispatcher import call_safely
from watcher.gitrepo import run_git_process
from watcher.layout import is_coordination_path
from watcher.problems import Problem
from watcher.validation import Profile, check_document
from watcher.watchplan import is_editor_file

RECHECK_AFTER = 0.05
IDLE_WAIT = 1.0


def blob_id(data: bytes) -> str:
    """The object id git gives these bytes, without asking git."""
    return hashlib.sha1(
        b"blob %d\0" % len(data) + data, usedforsecurity=False
    ).hexdigest()


@dataclass(frozen=True)
class _Suspect:
    blob: str
    due: float


class EditChecker:
    """Validates saved coordination files; only `EditWatch`'s thread calls it."""

    def __init__(self, repo: Path, recheck_after: float = RECHECK_AFTER) -> None:
        self.repo = repo
        self.recheck_after = recheck_after
        self._suspects: dict[str, _Suspect] = {}
        self._reported: dict[str, str] = {}

    def saved(self, paths: Iterable[str]) -> None:
        """Check files the filesystem source saw change."""
        wanted = sorted(set(paths))
        committed = self._committed_blobs(wanted)
        for path in wanted:
            self._check(path, committed.get(path), recheck=False)

    def rescan(self) -> None:
        """Check every coordination file in the tree (events may have been lost)."""
        self.saved(self._all_paths())

    def next_due(self) -> float | None:
        return min((suspect.due for suspect in self._suspects.values()), default=None)

    def recheck_due(self) -> None:
        now = time.monotonic()
        due = [path for path, suspect in self._suspects.items() if suspect.due <= now]
        committed = self._committed_blobs(due) if due else {}
        for path in due:
            self._check(path, committed.get(path), recheck=True)

    def _check(self, path: str, committed: str | None, *, recheck: bool) -> None:
        try:
            data = (self.repo / path).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            self._forget(path)
            return
        blob = blob_id(data)
        if blob == committed:
            # Back to its committed version: the same breakage made again later
            # is a new edit, to be reported again.
            self._settled_valid(path, [])
            return
        if self._reported.get(path) == blob:
            self._suspects.pop(path, None)
            return
        result = check_document(path, data, Profile.LEGACY)
        if result.is_valid:
            self._settled_valid(path, result.problems)
            return
        suspect = self._suspects.get(path)
        if recheck and suspect is not None and suspect.blob == blob:
            self._report(path, blob, result.problems)
        else:
            due = time.monotonic() + self.recheck_after
            self._suspects[path] = _Suspect(blob, due)
            logger.debug("{path} looks broken; checking again once settled", path=path)

    def _settled_valid(self, path: str, problems: list[Problem]) -> None:
        self._suspects.pop(path, None)
        if self._reported.pop(path, None) is not None:
            logger.bind(path=path).info("{path} is valid again", path=path)
        for problem in problems:
            logger.bind(path=path, rule=problem.rule).debug(
                "{location}: {message}",
                location=problem.location(),
                message=problem.message,
            )

    def _report(self, path: str, blob: str, problems: list[Problem]) -> None:
        self._suspects.pop(path, None)
        self._reported[path] = blob
        errors = [problem for problem in problems if problem.is_error]
        best = errors[0]
        logger.bind(
            path=path,
            line=best.line,
            column=best.column,
            json_path=best.json_path,
            rule=best.rule,
            hint=best.hint,
            more=len(errors) - 1,
        ).warning(
            "{location}: {json_path}: {message} (edited in the checkout, not committed)"
            + (" and {more} more" if len(errors) > 1 else ""),
            location=best.location(),
            json_path=best.json_path,
            message=best.message,
            more=len(errors) - 1,
        )

    def _forget(self, path: str) -> None:
        self._suspects.pop(path, None)
        self._reported.pop(path, None)

    def _committed_blobs(self, paths: list[str]) -> dict[str, str]:
        """The blob of each path in HEAD (missing when untracked or no HEAD yet)."""
        if not paths:
            return {}
        completed = run_git_process(["ls-tree", "-z", "HEAD", "--", *paths], self.repo)
        blobs: dict[str, str] = {}
        for entry in completed.stdout.split(b"\0"):
            meta, _, raw_path = entry.partition(b"\t")
            if raw_path and meta.split(b" ")[1:2] == [b"blob"]:
                blobs[os.fsdecode(raw_path)] = meta.split(b" ")[2].decode()
        return blobs

    def _all_paths(self) -> list[str]:
        found = []
        for root, dirs, files in os.walk(self.repo):
            dirs[:] = [name for name in dirs if not name.startswith(".")]
            for name in files:
                relative = Path(root, name).relative_to(self.repo).as_posix()
                if not is_editor_file(name) and is_coordination_path(relative):
                    found.append(relative)
        return found


@dataclass(frozen=True)
class _Request:
    paths: frozenset[str] = frozenset()
    rescan: bool = False


class EditWatch:
    """An EditChecker on a thread of its own, fed by the filesystem source."""

    def __init__(self, checker: EditChecker) -> None:
        self.checker = checker
        self._requests: queue.Queue[_Request | None] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="edits", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def saved(self, paths: Iterable[str]) -> None:
        self._put(_Request(paths=frozenset(paths)))

    def rescan(self) -> None:
        self._put(_Request(rescan=True))

    def stop(self, timeout: float = 5.0) -> None:
        self._requests.put(None)
        if self.thread.is_alive():
            self.thread.join(timeout=timeout)

    def is_settled(self) -> bool:
        """Every saved file checked, and no broken one waiting to be looked at again.

        The checker works under the same lock, so its state is read whole.
        """
        with self._lock:
            return self._pending == 0 and self.checker.next_due() is None

    def _put(self, request: _Request) -> None:
        with self._lock:
            self._pending += 1
        self._requests.put(request)

    def _run(self) -> None:
        while True:
            due = self.checker.next_due()
            wait = IDLE_WAIT if due is None else max(0.0, due - time.monotonic())
            try:
                request = self._requests.get(timeout=wait)
            except queue.Empty:
                with self._lock:
                    call_safely("checking broken files again", self.checker.recheck_due)
                continue
            if request is None:
                return
            with self._lock:
                call_safely(
                    "checking saved files", functools.partial(self._check, request)
                )
                self._pending -= 1

    def _check(self, request: _Request) -> None:
        if request.rescan:
            self.checker.rescan()
        elif request.paths:
            self.checker.saved(request.paths)
        self.checker.recheck_due()
