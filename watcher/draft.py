"""What an operation works on: the documents at the remote tip, as a `Draft`.

An operation (claim a job, append a message, renew a lease) reads documents from
the draft, writes changed ones back, and returns the commit summary, or `Moot`
when it no longer applies at this tip. Operations are registered by name so the
offline queue can rebuild them from JSON.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import marshal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, NoReturn, Protocol, TypeVar

from watcher.documents import Snapshot, dump_document
from watcher.errors import WatcherError
from watcher.jsonload import paused_collection
from watcher.layout import is_coordination_path
from watcher.problems import Problem
from watcher.timestamps import format_timestamp
from watcher.validation import (
    DocumentResult,
    Profile,
    check_value,
    check_value_change,
)

_REMOVED = object()
TOO_LARGE = "too-large"  # the loader's rule for a document over its size limit


class InvalidBase(WatcherError):
    """The tip holds a document that does not parse or breaks its schema."""


class Draft:
    """The documents at the remote tip, as an operation changes them.

    `read_past_limit`, when given, reads a document of the tip that the loader
    refused only for its size, with the limit lifted: see `read(oversized=True)`.
    """

    def __init__(
        self,
        base: Snapshot,
        node: str,
        now: datetime,
        read_past_limit: Callable[[str], DocumentResult] | None = None,
    ) -> None:
        self.base = base
        self.node = node
        self.now = now
        self.result: Any = None
        self._changes: dict[str, Any] = {}
        self._read_past_limit = read_past_limit
        self._oversized: dict[str, Any] = {}
        self._handed_out: dict[str, Any] = {}  # the last copy `read` gave, by path

    def read(self, path: str, default: Any = None, *, oversized: bool = False) -> Any:
        """A deep copy of the document at `path` (as changed so far), or `default`.

        A document of the tip that is broken is never handed out (InvalidBase),
        with one exception: `oversized=True` is for an operation that shrinks
        the document, which must be able to read one that is only too large.
        """
        if path in self._changes:
            value = self._changes[path]
            found = copied(default if value is _REMOVED else value)
        elif path in self.base.problems:
            found = copied(self._past_limit(path) if oversized else self._refuse(path))
        else:
            found = copied(self.base.documents.get(path, default))
        self._handed_out[path] = found
        return found

    def original(self, path: str) -> Any:
        """The valid version of `path` the operation started from (None: none)."""
        return self._oversized.get(path, self.base.documents.get(path))

    def _past_limit(self, path: str) -> Any:
        if path in self._oversized:
            return self._oversized[path]
        problems = self.base.problems[path]
        if self._read_past_limit is None or any(p.rule != TOO_LARGE for p in problems):
            self._refuse(path)
        result = self._read_past_limit(path)
        if not result.is_valid:
            self._refuse(path, result.errors[0])
        self._oversized[path] = result.value
        return result.value

    def _refuse(self, path: str, problem: Problem | None = None) -> NoReturn:
        first = problem or self.base.problems[path][0]
        hint = (
            first.hint
            if first.rule == TOO_LARGE
            else f"repair {path} on the remote branch "
            "(`build-watcher validate --all` shows every problem)"
        )
        raise InvalidBase(
            f"{first.describe()} (at commit {self.base.commit}); "
            "refusing to write over it",
            hint=hint,
        )

    def write(self, path: str, value: Any) -> None:
        """Keep a copy of `value`. The draft's own copy that `read` gave out for
        this path is taken as it is instead (copying a store of thousands of
        records again is a good part of a write): what is written is then that
        object as the operation leaves it."""
        is_ours = value is self._handed_out.pop(path, None)
        self._changes[path] = value if is_ours else copied(value)

    def write_bytes(self, path: str, data: bytes) -> None:
        """A file that is not a coordination document (a trimmed build log)."""
        if is_coordination_path(path) and path.endswith(".json"):
            raise ValueError(f"{path} is a coordination document: use write()")
        self._changes[path] = bytes(data)

    def remove(self, path: str) -> None:
        self._changes[path] = _REMOVED

    @property
    def timestamp(self) -> str:
        """`now` in the one written form."""
        return format_timestamp(self.now)

    def changes(self) -> dict[str, bytes | None]:
        """What differs from the tip, serialised; None removes a file."""
        changed: dict[str, bytes | None] = {}
        for path, value in self._changes.items():
            if value is _REMOVED:
                if path in self.base.blobs or not is_coordination_path(path):
                    changed[path] = None
            elif isinstance(value, bytes):
                changed[path] = value
            elif path not in self.base.blobs or self.base.documents.get(path) != value:
                changed[path] = dump_document(value)
        return changed

    def changed_documents(self) -> dict[str, Any]:
        return {
            path: value
            for path, value in self._changes.items()
            if value is not _REMOVED and not isinstance(value, bytes)
        }


@dataclass(frozen=True)
class Moot:
    """The operation no longer applies at this tip (the job is already taken)."""

    reason: str


class Operation(Protocol):
    name: ClassVar[str]

    def apply(self, draft: Draft) -> str | Moot: ...

    def to_json(self) -> dict[str, Any]: ...


OperationType = TypeVar("OperationType", bound=type)
_OPERATIONS: dict[str, type] = {}


def register_operation(cls: OperationType) -> OperationType:
    """Make an operation class rebuildable from the offline queue by its `name`.

    It is rebuilt with `cls.from_json(payload)` when defined, else `cls(**payload)`.
    """
    name = getattr(cls, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"{cls.__qualname__} needs a class attribute `name`")
    known = _OPERATIONS.get(name)
    if known is not None and known.__qualname__ != cls.__qualname__:
        raise ValueError(f"operation name {name!r} is already used by {known}")
    _OPERATIONS[name] = cls
    return cls


def rebuild_operation(name: str, module: str, payload: dict[str, Any]) -> Operation:
    """The operation `name` with `payload` (importing `module` when needed).

    Only modules of this package are imported: the queue file is data, not code.
    """
    if name not in _OPERATIONS and module.startswith("watcher."):
        importlib.import_module(module)
    cls = _OPERATIONS.get(name)
    if cls is None:
        raise WatcherError(
            f"queued operation {name!r} (from {module}) is not known to this version",
            hint="run the build-watcher version that queued it, or remove the entry",
        )
    from_json = getattr(cls, "from_json", None)
    try:
        operation: Operation = from_json(payload) if from_json else cls(**payload)
    except (TypeError, ValueError, KeyError) as error:
        raise WatcherError(
            f"queued operation {name!r} cannot be rebuilt from {payload!r}: {error}"
        ) from error
    return operation


def operation_payload(operation: Any) -> dict[str, Any]:
    """A dataclass operation's fields as JSON values (tuples become lists), the
    payload `cls(**payload)` rebuilds it from."""
    return {
        item.name: _jsonable(getattr(operation, item.name))
        for item in dataclasses.fields(operation)
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    return value


def strict_problems(draft: Draft) -> list[Problem]:
    """Strict errors in what this write adds or alters.

    As the pre-commit hook judges a commit, records the write leaves as they were
    are held to legacy, and since the tip's version passed legacy they are not
    validated again: appending a message validates that message, not the store.
    A legacy record the write alters (a message marked read) may keep the
    departures its document already had: when the quick judgement finds errors,
    those whose rule and message the tip's version shows too are forgiven.
    """
    found: list[Problem] = []
    for path, value in draft.changed_documents().items():
        before = draft.original(path)
        judged = check_value_change(path, value, before, before_is_valid=True)
        errors = [p for p in judged if p.is_error]
        if errors and before is not None:
            old = check_value(path, before, Profile.STRICT)
            known = {(p.rule, p.message) for p in old}
            errors = [p for p in errors if (p.rule, p.message) not in known]
        found.extend(errors)
    return found


def copied(value: Any) -> Any:
    """A deep copy of a document, fast: a store of 20,000 messages took a tenth
    of a second with `copy.deepcopy` and takes a fifth of that through marshal,
    which knows exactly the types parsed JSON holds (and keeps shared parts
    shared, as deepcopy does). Other values go to deepcopy."""
    try:
        with paused_collection():
            return marshal.loads(marshal.dumps(value))
    except ValueError:
        return copy.deepcopy(value)
