"""Every write is a compare-and-swap on the remote branch.

`transact` fetches the remote branch, rebuilds the coordination documents from its
tip, lets an operation change them in a `Draft`, validates what changed with the
strict profile, builds a commit on top of the tip in a private index and pushes it
without force. A rejected push means someone else wrote first: fetch and apply the
operation again to the new tip (where it may now be moot), with jittered
exponential backoff, a bounded number of times. History stays linear and no
coordination file is ever merged as text.

When the remote cannot be reached, the operation waits in the durable offline queue
(`watcher.outbox`) and is re-decided against the tip when the remote is back.
"""

from __future__ import annotations

import copy
import enum
import importlib
import random
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar

from loguru import logger

from watcher import gitrepo, outbox
from watcher.config import Config
from watcher.documents import Snapshot, dump_document, read_snapshot
from watcher.errors import WatcherError
from watcher.ids import new_ulid
from watcher.layout import is_coordination_path
from watcher.problems import Problem
from watcher.timestamps import format_timestamp, now_utc
from watcher.validation import Profile, check_value
from watcher.worktree import fast_forward

MAX_ATTEMPTS = 12
BACKOFF_BASE = 0.05
BACKOFF_CAP = 2.0
_REMOVED = object()
_REMOTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class InvalidBase(WatcherError):
    """The tip holds a document that does not parse or breaks its schema."""


class Draft:
    """The documents at the remote tip, as an operation changes them."""

    def __init__(self, base: Snapshot, node: str, now: datetime) -> None:
        self.base = base
        self.node = node
        self.now = now
        self.result: Any = None
        self._changes: dict[str, Any] = {}

    def read(self, path: str, default: Any = None) -> Any:
        """A deep copy of the document at `path` (as changed so far), or `default`."""
        if path in self._changes:
            value = self._changes[path]
            return copy.deepcopy(default if value is _REMOVED else value)
        if path in self.base.problems:
            first = self.base.problems[path][0]
            raise InvalidBase(
                f"{first.location()}::{first.json_path}: {first.message} "
                f"(at commit {self.base.commit}); refusing to write over it",
                hint=f"repair {path} on the remote branch "
                "(`build-watcher validate --all` shows every problem)",
            )
        return copy.deepcopy(self.base.documents.get(path, default))

    def write(self, path: str, value: Any) -> None:
        self._changes[path] = copy.deepcopy(value)

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


class OutcomeStatus(enum.Enum):
    DONE = "done"
    MOOT = "moot"
    FAILED = "failed"
    QUEUED = "queued"


@dataclass(frozen=True)
class Outcome:
    """What a transaction did. `attempts` counts pushes offered to the remote."""

    status: OutcomeStatus
    summary: str
    reason: str = ""
    commit: str | None = None
    result: Any = None
    attempts: int = 0

    @property
    def is_done(self) -> bool:
        return self.status is OutcomeStatus.DONE

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "summary": self.summary,
            "reason": self.reason,
            "commit": self.commit,
            "attempts": self.attempts,
        }


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


def rebuild_operation(entry: outbox.Entry) -> Operation:
    """The operation a queue entry describes (importing its module when needed)."""
    if entry.operation not in _OPERATIONS and entry.module.startswith("watcher."):
        importlib.import_module(entry.module)
    cls = _OPERATIONS.get(entry.operation)
    if cls is None:
        raise WatcherError(f"queued operation {entry.operation!r} is not known here")
    from_json = getattr(cls, "from_json", None)
    operation: Operation = (
        from_json(entry.payload) if from_json else cls(**entry.payload)
    )
    return operation


def transact(
    config: Config, operation: Operation, *, offline_ok: bool = True
) -> Outcome:
    """Apply `operation` to the remote branch as one compare-and-swap commit."""
    config.require_node()
    gitrepo.require_git()
    if offline_ok and outbox.has_entries(config):
        flush_outbox(config)
        if outbox.has_entries(config):
            return _queue(config, operation, "earlier operations are still queued")
    try:
        return attempt(config, operation)
    except gitrepo.RemoteUnreachable as error:
        if not offline_ok:
            return Outcome(OutcomeStatus.FAILED, operation.name, reason=error.message)
        return _queue(config, operation, error.message)


def flush_outbox(config: Config) -> list[Outcome]:
    """Apply queued operations in order, each re-decided against the tip now.

    Stops at the first one the remote is still unreachable for; raises
    RemoteAccessDenied (keeping the queue) when the remote refuses us.
    """
    outcomes: list[Outcome] = []
    with outbox.flush_lock(config):
        for entry in outbox.entries(config):
            try:
                outcome = attempt(config, rebuild_operation(entry), entry.id)
            except gitrepo.RemoteUnreachable:
                break
            except (gitrepo.RemoteAccessDenied, gitrepo.GitError):
                raise
            except WatcherError as error:
                outcome = Outcome(OutcomeStatus.FAILED, entry.operation, str(error))
            _settle(config, entry, outcome)
            outcomes.append(outcome)
    return outcomes


def _settle(config: Config, entry: outbox.Entry, outcome: Outcome) -> None:
    log = logger.bind(entry=entry.id, operation=entry.operation)
    if outcome.status is not OutcomeStatus.DONE:
        outbox.record_failure(config, entry, outcome.status.value, outcome.reason)
        log.warning("queued operation did not land: {reason}", reason=outcome.reason)
    else:
        log.info("queued operation landed", commit=outcome.commit)
    outbox.remove(config, entry)


def _queue(config: Config, operation: Operation, why: str) -> Outcome:
    entry = outbox.enqueue(
        config,
        {
            "queued_at": format_timestamp(now_utc()),
            "node": config.require_node(),
            "operation": operation.name,
            "module": type(operation).__module__,
            "payload": operation.to_json(),
        },
    )
    logger.bind(entry=entry.id, operation=operation.name).warning(
        "remote unavailable, operation queued: {why}", why=why
    )
    return Outcome(OutcomeStatus.QUEUED, operation.name, reason=why)


@dataclass(frozen=True)
class _Plan:
    """An operation applied to one tip: the commit to offer, and what to report."""

    summary: str
    changes: dict[str, bytes | None]
    result: Any


def attempt(
    config: Config, operation: Operation, entry_id: str | None = None
) -> Outcome:
    """Fetch, apply, validate, commit, push; again on rejection, a bounded number."""
    tracking = tracking_ref(config)
    last_rejection = ""
    for number in range(1, MAX_ATTEMPTS + 1):
        tip = gitrepo.fetch_branch(config.repo, config.remote, config.branch, tracking)
        plan = decide(config, operation, tip)
        if isinstance(plan, Outcome):
            return plan
        commit = _commit(config, operation, tip, plan, entry_id)
        pushed = gitrepo.push_commit(config.repo, config.remote, commit, config.branch)
        if pushed.status in (gitrepo.PushStatus.PUSHED, gitrepo.PushStatus.UP_TO_DATE):
            _after_push(config, tracking, tip, commit)
            status = OutcomeStatus.DONE
            return Outcome(status, plan.summary, "", commit, plan.result, number)
        last_rejection = f"{pushed.status.value}: {pushed.summary}"
        logger.bind(operation=operation.name, attempt=number).debug(
            "push refused, trying again on the new tip: {why}", why=last_rejection
        )
        time.sleep(backoff(number))
    reason = f"the push was refused {MAX_ATTEMPTS} times; last {last_rejection}"
    return Outcome(OutcomeStatus.FAILED, operation.name, reason, attempts=MAX_ATTEMPTS)


def decide(config: Config, operation: Operation, tip: str | None) -> _Plan | Outcome:
    """Apply `operation` to the documents at `tip`; an Outcome when nothing to push."""
    base = read_snapshot(config.repo, tip) if tip else Snapshot(None)
    draft = Draft(base, config.require_node(), now_utc())
    try:
        decision = operation.apply(draft)
    except InvalidBase as error:
        return Outcome(OutcomeStatus.FAILED, operation.name, str(error), tip)
    if isinstance(decision, Moot):
        status = OutcomeStatus.MOOT
        return Outcome(status, operation.name, decision.reason, tip, draft.result)
    problems = strict_problems(draft)
    if problems:
        reason = "; ".join(f"{p.path}::{p.json_path}: {p.message}" for p in problems)
        return Outcome(OutcomeStatus.FAILED, decision, f"would write {reason}", tip)
    changes = draft.changes()
    if not changes:
        return Outcome(OutcomeStatus.DONE, decision, "", tip, draft.result)
    return _Plan(decision, changes, draft.result)


def strict_problems(draft: Draft) -> list[Problem]:
    """Strict errors in changed documents that the tip's version did not have.

    A legacy repository's untouched records may already break the strict profile;
    as the pre-commit hook does, only what this write introduces is refused. A
    problem counts as new when its rule and message are not among the old
    version's (json paths shift when records are inserted, messages do not).
    """
    found: list[Problem] = []
    for path, value in draft.changed_documents().items():
        errors = [p for p in check_value(path, value, Profile.STRICT) if p.is_error]
        if errors and path in draft.base.documents:
            old = check_value(path, draft.base.documents[path], Profile.STRICT)
            known = {(p.rule, p.message) for p in old}
            errors = [p for p in errors if (p.rule, p.message) not in known]
        found.extend(errors)
    return found


def _commit(
    config: Config,
    operation: Operation,
    tip: str | None,
    plan: _Plan,
    entry_id: str | None,
) -> str:
    node = config.require_node()
    summary, changes = plan.summary, plan.changes
    index_file = config.state_path / "tmp" / f"index-{new_ulid()}"
    index_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        tree = gitrepo.write_tree(config.repo, tip, changes, index_file)
    finally:
        index_file.unlink(missing_ok=True)
    trailers = [
        f"Build-Watcher-Server: {node}",
        f"Build-Watcher-Operation: {operation.name}",
    ]
    if entry_id:
        trailers.append(f"Build-Watcher-Queued: {entry_id}")
    message = f"{node}: {summary}\n\n" + "\n".join(trailers) + "\n"
    identity = gitrepo.identity_environment(node, f"{node}@build-watcher.invalid")
    return gitrepo.commit_tree(config.repo, tree, tip, message, identity)


def _after_push(config: Config, tracking: str, tip: str | None, commit: str) -> None:
    """Record the new tip locally, then bring the checkout along when that is clean."""
    gitrepo.update_ref(config.repo, tracking, commit, tip)
    fast_forward(config.repo, config.branch, commit)


def tracking_ref(config: Config) -> str:
    """Where the remote branch's tip is kept: the usual remote-tracking ref.

    A remote given as a URL has no remote-tracking namespace; a private ref is used.
    """
    if _REMOTE_NAME.match(config.remote):
        return f"refs/remotes/{config.remote}/{config.branch}"
    return f"refs/build-watcher/remote/{config.branch}"


def backoff(attempt_number: int) -> float:
    """Full jitter: uniform in [0, base * 2^n], capped, so racers spread out."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt_number)
    return random.uniform(0, ceiling)
