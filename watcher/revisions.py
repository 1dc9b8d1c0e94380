"""Versions of coordination files as git stores them: in the index and in commits.

For `validate --staged`, the pre-commit hook and `validate --range`: which blob
each path holds, and which blob it replaces, read with as few git processes as
possible (one listing, then one `cat-file --batch` for every blob), because the
pre-commit hook runs on every commit a person makes. Plain `git` through
`run_git`; nothing here imports GitPython.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from watcher.documents import EMPTY_TREE, read_blobs
from watcher.errors import UsageError
from watcher.gitrepo import GitError, run_git
from watcher.layout import is_coordination_path

__all__ = ["FileVersion", "range_versions", "read_blobs", "staged_versions"]

_NO_BLOB = "0" * 40
_FILE_MODES = (b"100644", b"100755")


class FileVersion(NamedTuple):
    """One version of one file: its blob, the blob it replaces, and where it is."""

    path: str
    blob: str
    before: str | None = None  # None: the path is new
    commit: str | None = None  # None: the index

    @property
    def label(self) -> str:
        """`path`, or `commit:path` (git's own notation) for a committed version."""
        return f"{self.commit[:12]}:{self.path}" if self.commit else self.path


def index_environment() -> dict[str, str]:
    """Keep the index git chose for this commit (`git commit -a` uses its own)."""
    index = os.environ.get("GIT_INDEX_FILE")
    return {"GIT_INDEX_FILE": os.path.abspath(index)} if index else {}


def staged_versions(repo: Path, *, every_file: bool = False) -> list[FileVersion]:
    """Coordination files in the index that differ from HEAD (or all of them)."""
    if every_file:
        return _every_staged_file(repo)
    try:
        out = _diff_index(repo, "HEAD")
    except GitError:
        out = _diff_index(repo, EMPTY_TREE)  # no commit yet: everything is new
    return [version for version in _raw_entries(out, None) if version is not None]


def _diff_index(repo: Path, base: str) -> bytes:
    args = ["diff-index", "--cached", "-z", "--no-renames", "--no-ext-diff", base]
    return run_git(args, cwd=repo, extra_env=index_environment())


def _every_staged_file(repo: Path) -> list[FileVersion]:
    head = _tree_blobs(repo, "HEAD")
    out = run_git(["ls-files", "-s", "-z"], cwd=repo, extra_env=index_environment())
    versions = []
    for entry in filter(None, out.split(b"\0")):
        meta, _, raw_path = entry.partition(b"\t")
        mode, blob, stage = meta.split(b" ")
        path = raw_path.decode("utf-8", "surrogateescape")
        if mode in _FILE_MODES and stage == b"0" and is_coordination_path(path):
            versions.append(FileVersion(path, blob.decode(), head.get(path)))
    return versions


def _tree_blobs(repo: Path, rev: str) -> dict[str, str]:
    try:
        out = run_git(["ls-tree", "-r", "-z", "--full-tree", rev], cwd=repo)
    except GitError:
        return {}
    blobs = {}
    for entry in filter(None, out.split(b"\0")):
        meta, _, raw_path = entry.partition(b"\t")
        blobs[raw_path.decode("utf-8", "surrogateescape")] = meta.split(b" ")[
            2
        ].decode()
    return blobs


def range_versions(repo: Path, revisions: str) -> list[FileVersion]:
    """Every coordination file version each commit in `revisions` introduced.

    One `git log --raw` pass. A merge is judged by what it changed against its
    first parent, as `git log -m` lists first.
    """
    if not revisions or revisions.startswith("-"):
        raise UsageError(
            f"--range {revisions!r} is not a revision range",
            hint="give a range such as origin/main..HEAD",
        )
    args = ["log", "-m", "--format=commit %H", "--raw", "-z", "--no-abbrev"]
    args += ["--no-renames", "--reverse", "--end-of-options", revisions, "--"]
    try:
        out = run_git(args, cwd=repo)
    except GitError as error:
        raise UsageError(
            f"cannot read the commits of {revisions!r}: {error.stderr.strip()}",
            hint="check the range with `git log --oneline A..B`",
        ) from error
    return list(_log_versions(out))


def _log_versions(out: bytes) -> Iterator[FileVersion]:
    """Parse `commit SHA` headers and raw entries; later parents of a merge skipped."""
    fields = iter(out.split(b"\0"))
    seen: set[str] = set()
    commit: str | None = None
    for field in fields:
        header = field.lstrip(b"\n")
        if header.startswith(b"commit "):
            name = header.split(b" ")[1].decode()
            commit = None if name in seen else name
            seen.add(name)
        elif header.startswith(b":"):
            version = _raw_entry(header, next(fields, b""), commit)
            if version is not None and commit is not None:
                yield version


def _raw_entries(out: bytes, commit: str | None) -> Iterator[FileVersion | None]:
    fields = iter(out.split(b"\0"))
    for field in fields:
        if field.startswith(b":"):
            yield _raw_entry(field, next(fields, b""), commit)


def _raw_entry(meta: bytes, raw_path: bytes, commit: str | None) -> FileVersion | None:
    """A raw diff entry (`:old_mode new_mode old new status`) adding a file version."""
    _old_mode, new_mode, old, new, status = meta[1:].split(b" ")[:5]
    path = raw_path.decode("utf-8", "surrogateescape")
    if status[:1] in (b"D", b"U") or new_mode not in _FILE_MODES:
        return None
    if not is_coordination_path(path):
        return None
    before = None if old.decode() == _NO_BLOB else old.decode()
    return FileVersion(path, new.decode(), before, commit)


def unique_blobs(versions: Iterable[FileVersion]) -> list[str]:
    """Every blob the versions need, new and replaced, each once."""
    wanted = (blob for v in versions for blob in (v.blob, v.before) if blob is not None)
    return list(dict.fromkeys(wanted))
