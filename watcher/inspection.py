"""The file versions one `validate` run or pre-commit hook covers, each checked.

Three sources: files in the working tree, the index (what the next commit will
hold), and the commits of a range. For the index and for commits, the default
judgement is the pre-commit hook's: what the change adds or alters must be
strict, what it leaves as it was is held to legacy (`check_change`). A profile
given explicitly judges every document whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from watcher.errors import UsageError
from watcher.gitrepo import run_git
from watcher.jsonload import LoadError, load_json
from watcher.layout import is_coordination_path
from watcher.revisions import (
    FileVersion,
    range_versions,
    read_blobs,
    staged_versions,
    unique_blobs,
)
from watcher.validation import DocumentResult, Profile, check_change, check_document


class CheckedFile(NamedTuple):
    """One checked version: where it came from and what was found."""

    label: str
    result: DocumentResult
    commit: str | None = None

    @property
    def is_valid(self) -> bool:
        return self.result.is_valid


def check_worktree(
    repo: Path, paths: Iterable[str], profile: Profile
) -> list[CheckedFile]:
    """Files as they are on disk; directories stand for the JSON files below them."""
    checked = []
    for given in paths:
        for file in _expand(Path(given)):
            relative = _relative(repo, file)
            result = check_document(relative, _read(file), profile)
            checked.append(CheckedFile(relative, result))
    return checked


def worktree_paths(repo: Path) -> list[str]:
    """Every coordination file in the working tree, tracked or new, not ignored."""
    out = run_git(["ls-files", "-z", "-c", "-o", "--exclude-standard"], cwd=repo)
    paths = {raw.decode("utf-8", "surrogateescape") for raw in out.split(b"\0") if raw}
    chosen = sorted(p for p in paths if is_coordination_path(p))
    return [str(repo / p) for p in chosen if (repo / p).is_file()]


def check_staged(
    repo: Path, profile: Profile | None, *, every_file: bool = False
) -> list[CheckedFile]:
    """The index: the changes the next commit holds (or every coordination file)."""
    return check_versions(repo, staged_versions(repo, every_file=every_file), profile)


def check_range(
    repo: Path, revisions: str, profile: Profile | None
) -> list[CheckedFile]:
    """Every coordination file version the commits of `revisions` introduced."""
    return check_versions(repo, range_versions(repo, revisions), profile)


def check_versions(
    repo: Path, versions: list[FileVersion], profile: Profile | None
) -> list[CheckedFile]:
    """Check stored versions; each distinct (path, blob, replaced blob) once."""
    contents = read_blobs(repo, unique_blobs(versions))
    parsed: dict[str, Any] = {}
    done: dict[tuple[str, str, str | None], DocumentResult] = {}
    checked = []
    for version in versions:
        key = (version.path, version.blob, version.before if profile is None else None)
        if key not in done:
            data = contents[version.blob]
            if profile is not None:
                done[key] = check_document(version.path, data, profile)
            else:
                before = _parsed(version.before, contents, parsed)
                done[key] = check_change(version.path, data, before)
        checked.append(CheckedFile(version.label, done[key], version.commit))
    return checked


def _parsed(blob: str | None, contents: dict[str, bytes], cache: dict[str, Any]) -> Any:
    """The value a replaced blob held; None (judge as new) when it did not parse."""
    if blob is None:
        return None
    if blob not in cache:
        try:
            cache[blob], _ = load_json(contents[blob], "")
        except LoadError:
            cache[blob] = None
    return cache[blob]


def _expand(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(
            p for p in path.rglob("*.json") if p.is_file() and ".git" not in p.parts
        )
    if not path.is_file():
        raise UsageError(f"{path}: no such file", hint="check the path, or use --all")
    return [path]


def _relative(repo: Path, file: Path) -> str:
    """The repository path of `file` (it decides the schema), else the path as given."""
    try:
        return file.resolve().relative_to(repo).as_posix()
    except ValueError:
        return file.as_posix()


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as error:
        raise UsageError(
            f"{file}: cannot read: {os.strerror(error.errno or 0)}"
        ) from error
