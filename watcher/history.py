"""Replaying history: the commits of a branch, oldest first, into events.

One `git log --raw` pass says which coordination files each commit changed, and
only those blobs are read (in batches, through one `git cat-file --batch` each)
and parsed; a blob seen before comes from the `BlobCache`. The commits followed
are the first-parent chain: that is the sequence of states the shared branch
went through, and a merge counts as one change against its first parent.

Each step is diffed exactly as the daemon diffs a fresh tip, so `build-watcher
log` and a daemon catching up after a restart report the same events.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loguru import logger

from watcher.diff import diff_snapshots
from watcher.documents import BlobCache, Snapshot, read_blobs, read_snapshot
from watcher.errors import WatcherError
from watcher.events import Event
from watcher.gitrepo import resolve_commit, run_git, run_git_process
from watcher.layout import is_coordination_path
from watcher.problems import Problem
from watcher.progress import Progress
from watcher.validation import DocumentResult, Profile, check_document

# Blobs read per `git cat-file` call: few enough that the parsed versions of a
# large messages.json held at once stay small, many enough to amortise the call.
BATCH_BLOBS = 48
_LOG_FORMAT = "%x01%H%x00%ct%x00%an%x00%s"
_ZERO = "0" * 40
_LOG_OPTIONS = (
    "log",
    "--first-parent",
    "-m",
    "--reverse",
    "--root",
    "-z",
    "--raw",
    "--no-abbrev",
    "--no-renames",
)


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    time: datetime
    author: str
    summary: str

    @property
    def short(self) -> str:
        return self.sha[:10]


@dataclass(frozen=True)
class Change:
    """One file a commit touched: its new blob, or None when it was deleted."""

    path: str
    blob: str | None


@dataclass(frozen=True)
class Replayed:
    """One commit, the documents after it, and the events it brought."""

    commit: CommitInfo
    snapshot: Snapshot
    events: tuple[Event, ...]


def replay(
    repo: Path,
    me: str | None,
    *,
    since: str | None = None,
    until: str = "HEAD",
    memory: Progress | None = None,
    cache: BlobCache | None = None,
    start: Snapshot | None = None,
) -> Iterator[Replayed]:
    """Every first-parent commit after `since` up to `until`, oldest first.

    `memory` drops messages already reported (and remembers the new ones); when
    it is None, a fresh in-memory one is used, so a replay never reports one
    message twice. Without `since`, the replay starts from the empty repository.
    `start`, the documents at `since` when the caller already has them, saves
    reading them again.
    """
    memory = Progress(me) if memory is None else memory
    cache = BlobCache(capacity=256) if cache is None else cache
    tip = require_commit(repo, until)
    start = _starting_point(repo, since, start, cache)
    if start.commit and not is_ancestor(repo, start.commit, tip):
        yield _jump(repo, start, tip, me, memory=memory, cache=cache)
        return
    commits = list_changes(repo, f"{start.commit}..{tip}" if start.commit else tip)
    previous = start
    for batch in _batches(commits):
        results = _parse_batch(repo, batch, cache)
        for info, changes in batch:
            current = _advance(previous, info.sha, changes, results)
            events = memory.admit(diff_snapshots(previous, current, me))
            yield Replayed(info, current, tuple(events))
            previous = current


def _starting_point(
    repo: Path, since: str | None, known: Snapshot | None, cache: BlobCache
) -> Snapshot:
    if since is None:
        return Snapshot(None)
    commit = require_commit(repo, since)
    if known is not None and known.commit == commit:
        return known
    return read_snapshot(repo, commit, cache=cache)


def events_between(
    repo: Path,
    old_commit: str | None,
    new_commit: str,
    me: str | None,
    progress: Progress,
    *,
    cache: BlobCache | None = None,
    start: Snapshot | None = None,
) -> list[Event]:
    """The events of every commit after `old_commit` up to `new_commit`, in order.

    `progress` filters messages already reported and ends at `new_commit`; the
    caller saves it once the events are handled. A daemon with no progress yet
    should call `Progress.start_at` instead of replaying the whole history.
    The documents at `new_commit` are the last step's snapshot in `replay`.
    """
    events: list[Event] = []
    steps = replay(
        repo,
        me,
        since=old_commit,
        until=new_commit,
        memory=progress,
        cache=cache,
        start=start,
    )
    for step in steps:
        events.extend(step.events)
        progress.record(step.commit.sha)
    progress.record(require_commit(repo, new_commit))
    return events


def require_commit(repo: Path, rev: str) -> str:
    """The commit id `rev` names in `repo`, or an error saying it names none."""
    commit = resolve_commit(repo, rev)
    if commit is None:
        raise WatcherError(
            f"{repo}: {rev!r} names no commit",
            hint="give a commit id, branch or tag of this checkout (see `git log`)",
        )
    return commit


def is_ancestor(repo: Path, ancestor: str, descendant: str) -> bool:
    completed = run_git_process(
        ["merge-base", "--is-ancestor", ancestor, descendant], cwd=repo
    )
    return completed.returncode == 0


def list_changes(repo: Path, revisions: str) -> list[tuple[CommitInfo, list[Change]]]:
    """Each first-parent commit in `revisions`, oldest first, with the coordination
    files it changed against its first parent (all of them for a root commit)."""
    out = run_git(
        [*_LOG_OPTIONS, f"--format={_LOG_FORMAT}", revisions],
        cwd=repo,
    )
    return _parse_log(out.decode("utf-8", "surrogateescape").split("\0"))


def _parse_log(tokens: list[str]) -> list[tuple[CommitInfo, list[Change]]]:
    """Read `git log -z --raw` tokens: a header of four, then (meta, path) pairs."""
    commits: list[tuple[CommitInfo, list[Change]]] = []
    position = 0
    while position < len(tokens):
        token = tokens[position].lstrip("\n")
        if token.startswith("\x01"):
            commits.append(
                (_commit_info(token[1:], tokens[position + 1 : position + 4]), [])
            )
            position += 4
        elif token.startswith(":"):
            path = tokens[position + 1]
            if is_coordination_path(path) and commits:
                commits[-1][1].append(Change(path, _new_blob(token)))
            position += 2
        else:
            position += 1
    return commits


def _commit_info(sha: str, fields: list[str]) -> CommitInfo:
    stamp, author, summary = fields
    return CommitInfo(sha, datetime.fromtimestamp(int(stamp), UTC), author, summary)


def _new_blob(meta: str) -> str | None:
    """The new blob of a raw entry (`:old new oldsha newsha status`), None if gone."""
    fields = meta.split()
    if fields[-1].startswith("D") or fields[3] == _ZERO or fields[1] == "160000":
        return None
    return fields[3]


def _batches(
    commits: list[tuple[CommitInfo, list[Change]]],
) -> Iterator[list[tuple[CommitInfo, list[Change]]]]:
    """Runs of consecutive commits that together change at most BATCH_BLOBS blobs."""
    batch: list[tuple[CommitInfo, list[Change]]] = []
    blobs = 0
    for commit in commits:
        batch.append(commit)
        blobs += len(commit[1])
        if blobs >= BATCH_BLOBS:
            yield batch
            batch, blobs = [], 0
    if batch:
        yield batch


def _parse_batch(
    repo: Path, batch: list[tuple[CommitInfo, list[Change]]], cache: BlobCache
) -> dict[tuple[str, str], DocumentResult]:
    """Parsed results for every blob the batch brings, reading only unknown ones."""
    wanted = {
        (change.blob, change.path)
        for _, changes in batch
        for change in changes
        if change.blob is not None
    }
    results: dict[tuple[str, str], DocumentResult] = {}
    missing = []
    for blob, path in wanted:
        cached = cache.get(blob, path)
        if cached is None:
            missing.append((blob, path))
        else:
            results[(blob, path)] = cached
    contents = read_blobs(repo, [blob for blob, _ in missing])
    for blob, path in missing:
        # Only validity counts here: warnings would cost locating each in the text.
        data = contents[blob]
        result = check_document(path, data, Profile.LEGACY, warnings=False)
        cache.put(blob, path, result)
        results[(blob, path)] = result
    return results


def _advance(
    previous: Snapshot,
    commit: str,
    changes: list[Change],
    results: dict[tuple[str, str], DocumentResult],
) -> Snapshot:
    """The snapshot after `changes`, with read_snapshot's rule: an invalid version
    is listed in problems and the last valid value stays in force."""
    if not changes:
        return Snapshot(commit, previous.documents, previous.blobs, previous.problems)
    documents: dict[str, Any] = dict(previous.documents)
    blobs = dict(previous.blobs)
    problems: dict[str, tuple[Problem, ...]] = dict(previous.problems)
    for change in changes:
        problems.pop(change.path, None)
        if change.blob is None:
            documents.pop(change.path, None)
            blobs.pop(change.path, None)
            continue
        blobs[change.path] = change.blob
        result = results[(change.blob, change.path)]
        if result.is_valid:
            documents[change.path] = result.value
        else:
            problems[change.path] = tuple(result.problems)
    return Snapshot(commit, documents, blobs, problems)


def _jump(
    repo: Path,
    start: Snapshot,
    tip: str,
    me: str | None,
    *,
    memory: Progress,
    cache: BlobCache,
) -> Replayed:
    """History was rewritten under us: compare the two states directly."""
    logger.warning(
        "the processed commit is not an ancestor of the tip; comparing states only",
        processed=start.commit,
        tip=tip,
    )
    current = read_snapshot(repo, tip, previous=start, cache=cache)
    header = run_git(["show", "-s", f"--format={_LOG_FORMAT}", tip], cwd=repo)
    fields = header.decode("utf-8", "surrogateescape").rstrip("\n").split("\0")
    events = memory.admit(diff_snapshots(start, current, me))
    return Replayed(_commit_info(tip, fields[1:4]), current, tuple(events))
