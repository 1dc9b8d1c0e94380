"""Coordination documents as git holds them: read from commits, never a working tree.

A `Snapshot` is every coordination document at one commit, parsed and checked with
the legacy profile. A document that does not parse or breaks its schema is listed
in `problems`; the last valid version (from the previous snapshot) stays in force.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watcher.gitrepo import GitError, git_error, run_git
from watcher.layout import is_coordination_path
from watcher.problems import Problem
from watcher.remoterefs import fetch_refs
from watcher.validation import DocumentResult, Profile, check_document

if TYPE_CHECKING:  # only annotations; importing it costs the pre-commit hook time
    from watcher.config import Config

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


@dataclass(frozen=True)
class Snapshot:
    """The coordination documents at `commit` (None: an empty repository)."""

    commit: str | None
    documents: Mapping[str, Any] = field(default_factory=dict)
    blobs: Mapping[str, str] = field(default_factory=dict)
    problems: Mapping[str, tuple[Problem, ...]] = field(default_factory=dict)

    def get(self, path: str, default: Any = None) -> Any:
        return self.documents.get(path, default)

    @property
    def paths(self) -> frozenset[str]:
        return frozenset(self.blobs)


def dump_document(value: Any) -> bytes:
    """The one serialisation the product writes: indent 2, UTF-8, final newline.

    The standard library writes indented JSON with its pure-Python encoder, the
    slowest step of a write to a large store. The types a parsed document holds
    are written here directly, byte for byte as it would, in 60% of its time;
    anything else (a tuple, a subclass, a non-finite number) is left to it.
    """
    pieces: list[str] = []
    try:
        _write_value(value, "\n", pieces)
        text = "".join(pieces)
    except (_Unusual, RecursionError):
        text = json.dumps(value, indent=2, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


class _Unusual(Exception):
    """A value `_write_value` leaves to the standard library."""


def _write_value(value: Any, newline: str, pieces: list[str]) -> None:
    """Append `value` as indented JSON; `newline` ends a line and indents the next."""
    kind = type(value)
    if kind is str:
        pieces.append(encode_basestring(value))
    elif kind is dict and value:
        _write_object(value, newline, pieces)
    elif kind is list and value:
        _write_array(value, newline, pieces)
    elif kind is dict or kind is list:
        pieces.append("{}" if kind is dict else "[]")
    else:
        pieces.append(_scalar(value))


def _write_object(value: dict[Any, Any], newline: str, pieces: list[str]) -> None:
    inner = newline + "  "
    separator = "{" + inner
    append = pieces.append
    for key, item in value.items():
        if type(key) is not str:
            raise _Unusual
        append(separator)
        append(encode_basestring(key))
        if type(item) is str:  # most values: no call for them
            append(": ")
            append(encode_basestring(item))
        else:
            append(": ")
            _write_value(item, inner, pieces)
        separator = "," + inner
    append(newline + "}")


def _write_array(value: list[Any], newline: str, pieces: list[str]) -> None:
    inner = newline + "  "
    separator = "[" + inner
    for item in value:
        pieces.append(separator)
        _write_value(item, inner, pieces)
        separator = "," + inner
    pieces.append(newline + "]")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int:
        return int.__repr__(value)
    if type(value) is float and math.isfinite(value):
        return float.__repr__(value)
    raise _Unusual


class BlobCache:
    """Parsed blobs by object id: a blob never changes, so entries never go stale."""

    def __init__(self, capacity: int = 512) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, str], DocumentResult] = OrderedDict()

    def get(self, sha: str, path: str) -> DocumentResult | None:
        key = (sha, path)
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        return None

    def put(self, sha: str, path: str, result: DocumentResult) -> None:
        self._entries[(sha, path)] = result
        self._entries.move_to_end((sha, path))
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


def list_coordination_blobs(repo: Path, rev: str) -> dict[str, str]:
    """Path to blob id for every coordination JSON file in `rev`'s tree."""
    out = run_git(["ls-tree", "-r", "-z", "--full-tree", rev], cwd=repo)
    blobs: dict[str, str] = {}
    for entry in out.split(b"\0"):
        if not entry:
            continue
        meta, _, raw_path = entry.partition(b"\t")
        _mode, kind, sha = meta.split(b" ")
        path = raw_path.decode("utf-8", "surrogateescape")
        if kind == b"blob" and is_coordination_path(path):
            blobs[path] = sha.decode()
    return blobs


def read_blobs(repo: Path, shas: Iterable[str]) -> dict[str, bytes]:
    """The contents of many blobs through one `git cat-file --batch`."""
    wanted = list(dict.fromkeys(shas))
    if not wanted:
        return {}
    out = run_git(
        ["cat-file", "--batch"],
        cwd=repo,
        input_bytes="\n".join(wanted).encode() + b"\n",
    )
    contents: dict[str, bytes] = {}
    position = 0
    for sha in wanted:
        header_end = out.index(b"\n", position)
        header = out[position:header_end].split(b" ")
        size = int(header[2])
        start = header_end + 1
        contents[sha] = out[start : start + size]
        position = start + size + 1
    return contents


def read_snapshot(
    repo: Path,
    rev: str,
    previous: Snapshot | None = None,
    cache: BlobCache | None = None,
    profile: Profile = Profile.LEGACY,
    *,
    warnings: bool = True,
) -> Snapshot:
    """The documents at `rev`, re-reading only blobs that changed since `previous`.

    `warnings=False` skips finding the ways a legacy document departs from strict
    (see `check_document`): for a reader that only acts on valid documents, such
    as a transaction's base. A `cache` should serve readers of one kind.
    """
    commit = run_git(
        ["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=repo
    )
    commit_id = commit.decode().strip()
    blobs = list_coordination_blobs(repo, commit_id)
    previous = previous or Snapshot(None)
    cache = cache or BlobCache()
    results = _results_for(repo, blobs, previous, cache, (profile, warnings))
    documents: dict[str, Any] = {}
    problems: dict[str, tuple[Problem, ...]] = {}
    for path, result in results.items():
        if result is None:
            documents[path] = previous.documents[path]
        elif result.is_valid:
            documents[path] = result.value
        else:
            problems[path] = tuple(result.problems)
            if path in previous.documents:
                documents[path] = previous.documents[path]
    return Snapshot(commit_id, documents, blobs, problems)


def _results_for(
    repo: Path,
    blobs: Mapping[str, str],
    previous: Snapshot,
    cache: BlobCache,
    judgement: tuple[Profile, bool],
) -> dict[str, DocumentResult | None]:
    """None marks a blob unchanged since `previous` whose parsed value is reused."""
    results: dict[str, DocumentResult | None] = {}
    missing: dict[str, str] = {}
    for path, sha in blobs.items():
        if (
            previous.blobs.get(path) == sha
            and path in previous.documents
            and path not in previous.problems
        ):
            results[path] = None
        elif (cached := cache.get(sha, path)) is not None:
            results[path] = cached
        else:
            missing[path] = sha
    contents = read_blobs(repo, missing.values())
    for path, sha in missing.items():
        profile, warnings = judgement
        data = contents[sha]
        result = check_document(path, data, profile, warnings=warnings, blob=sha)
        cache.put(sha, path, result)
        results[path] = result
    return results


def latest_snapshot(config: Config) -> Snapshot:
    """What the fleet last shared: the remote branch's tip as last fetched.

    Without any fetched tip, the checkout's HEAD stands in.
    """
    for rev in (config.tracking_ref, "HEAD"):
        try:
            return read_snapshot(config.repo, rev)
        except GitError:
            continue
    return Snapshot(None)


def refresh_tip(config: Config) -> str | None:
    """Fetch the remote branch's tip; the reason when that failed, else None.

    Through `fetch_refs`, so the fetch takes the ref lock like every other
    build-watcher fetch and never races a running daemon's.
    """
    refspec = f"+refs/heads/{config.branch}:{config.tracking_ref}"
    completed = fetch_refs(config.repo, config.remote, [refspec])
    if completed.returncode == 0:
        return None
    error = git_error(completed)
    return error.stderr.strip() or error.message
