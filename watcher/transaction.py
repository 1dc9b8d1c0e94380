"""Every write is a compare-and-swap on the remote branch.

`transact` fetches the remote branch, rebuilds the coordination documents from its
tip, lets an operation change them in a `Draft`, validates what changed with the
strict profile, builds a commit on top of the tip in a private index and pushes it
without force. A rejected push means someone else wrote first: fetch and apply the
operation again to the new tip (where it may now be moot), with full-jitter
exponential backoff, until `Config.transaction_timeout` has passed. The bound is a
time, not a count: with N writers racing, the last one needs about N rounds. A
refused push is an answer from the remote, so it is never queued offline; past the
deadline the operation fails with the reason. History stays linear and no
coordination file is ever merged as text.

When the remote cannot be reached, the operation waits in the durable offline queue
(`watcher.outbox`) and is re-decided against the tip when the remote is back.
"""

from __future__ import annotations

import enum
import random
import re
import time
from dataclasses import dataclass
from typing import Any

from loguru import logger

from watcher import gitrepo, outbox, remoterefs
from watcher.config import Config
from watcher.documents import Snapshot, read_snapshot
from watcher.draft import (
    Draft,
    InvalidBase,
    Moot,
    Operation,
    rebuild_operation,
    register_operation,
    strict_problems,
)
from watcher.errors import WatcherError
from watcher.ids import new_ulid
from watcher.jsonload import paused_collection
from watcher.timestamps import format_timestamp, now_utc
from watcher.tipcache import read_past_limit, remember_written, snapshot_at
from watcher.verdicts import VERDICTS
from watcher.worktree import fast_forward

__all__ = [
    "Draft",
    "Moot",
    "Operation",
    "Outcome",
    "OutcomeStatus",
    "flush_outbox",
    "register_operation",
    "snapshot_at",
    "transact",
]

BACKOFF_BASE = 0.05
BACKOFF_CAP = 2.0
_REMOTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


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

    @property
    def exit_code(self) -> int:
        """For a command: 0 when done or queued, 1 when moot or failed."""
        return 0 if self.status in (OutcomeStatus.DONE, OutcomeStatus.QUEUED) else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "summary": self.summary,
            "reason": self.reason,
            "commit": self.commit,
            "attempts": self.attempts,
        }


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
    except remoterefs.RemoteUnreachable as error:
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
                outcome = attempt(config, _rebuild(entry), entry.id)
            except remoterefs.RemoteUnreachable:
                break
            except (remoterefs.RemoteAccessDenied, gitrepo.GitError):
                raise
            except WatcherError as error:
                outcome = Outcome(OutcomeStatus.FAILED, entry.operation, str(error))
            _settle(config, entry, outcome)
            outcomes.append(outcome)
    return outcomes


def _rebuild(entry: outbox.Entry) -> Operation:
    return rebuild_operation(entry.operation, entry.module, entry.payload)


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
    documents: dict[str, Any]


def attempt(
    config: Config, operation: Operation, entry_id: str | None = None
) -> Outcome:
    """Fetch, apply, validate, commit, push; again on rejection, until the deadline."""
    VERDICTS.load(config.state_path)
    try:
        return _attempt(config, operation, entry_id)
    finally:
        VERDICTS.save(config.state_path)


def _attempt(config: Config, operation: Operation, entry_id: str | None) -> Outcome:
    tracking = tracking_ref(config)
    deadline = time.monotonic() + config.transaction_timeout
    last_rejection, number = "", 0
    while True:
        number += 1
        tip = remoterefs.fetch_branch(
            config.repo, config.remote, config.branch, tracking
        )
        plan = decide(config, operation, tip)
        if isinstance(plan, Outcome):
            return plan
        commit = _commit(config, operation, tip, plan, entry_id)
        pushed = remoterefs.push_commit(
            config.repo, config.remote, commit, config.branch
        )
        if pushed.status in (
            remoterefs.PushStatus.PUSHED,
            remoterefs.PushStatus.UP_TO_DATE,
        ):
            _after_push(config, tracking, tip, commit)
            remember_written(config.repo, plan.changes, plan.documents)
            status = OutcomeStatus.DONE
            return Outcome(status, plan.summary, "", commit, plan.result, number)
        last_rejection = f"{pushed.status.value}: {pushed.summary}"
        logger.bind(operation=operation.name, attempt=number).debug(
            "push refused, trying again on the new tip: {why}", why=last_rejection
        )
        pause = backoff(number)
        if time.monotonic() + pause >= deadline:
            return _gave_up(config, operation, number, last_rejection)
        time.sleep(pause)


def _gave_up(config: Config, operation: Operation, number: int, why: str) -> Outcome:
    reason = (
        f"the push was refused {number} times in {config.transaction_timeout:g} s "
        f"(other servers kept writing first; last {why}); try again, or raise "
        "`transaction_timeout` in the configuration"
    )
    return Outcome(OutcomeStatus.FAILED, operation.name, reason, attempts=number)


def decide(config: Config, operation: Operation, tip: str | None) -> _Plan | Outcome:
    """Apply `operation` to the documents at `tip`; an Outcome when nothing to push.

    The cyclic collector waits meanwhile: a large store parsed, copied and written
    again is hundreds of thousands of new objects without a cycle among them, and
    each full collection would walk them all (a tenth of a `send` on 20,000
    messages). Reference counting still frees what is dropped.
    """
    with paused_collection():
        return _decide(config, operation, tip)


def _decide(config: Config, operation: Operation, tip: str | None) -> _Plan | Outcome:
    base = snapshot_at(config, tip)
    draft = Draft(
        base,
        config.require_node(),
        now_utc(),
        read_past_limit=lambda path: read_past_limit(config.repo, base, path),
    )
    try:
        decision = operation.apply(draft)
    except InvalidBase as error:
        return Outcome(OutcomeStatus.FAILED, operation.name, str(error), tip)
    if isinstance(decision, Moot):
        status = OutcomeStatus.MOOT
        return Outcome(status, operation.name, decision.reason, tip, draft.result)
    problems = strict_problems(draft)
    if problems:
        reason = "; ".join(problem.describe() for problem in problems)
        return Outcome(OutcomeStatus.FAILED, decision, f"would write {reason}", tip)
    changes = draft.changes()
    if not changes:
        return Outcome(OutcomeStatus.DONE, decision, "", tip, draft.result)
    return _Plan(decision, changes, draft.result, draft.changed_documents())


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
    remoterefs.update_ref(config.repo, tracking, commit, tip)
    fast_forward(config.repo, config.branch, commit)


def tracking_ref(config: Config) -> str:
    """Where the remote branch's tip is kept: the usual remote-tracking ref.

    A remote given as a URL has no remote-tracking namespace; a private ref is used.
    """
    if _REMOTE_NAME.match(config.remote):
        return f"refs/remotes/{config.remote}/{config.branch}"
    return f"refs/build-watcher/remote/{config.branch}"


def read_shared_snapshot(config: Config) -> Snapshot:
    """What the fleet has shared, without fetching: the remote branch as last
    fetched, else HEAD (a checkout that never fetched, or a legacy one)."""
    for rev in (tracking_ref(config), "HEAD"):
        commit = gitrepo.resolve_commit(config.repo, rev)
        if commit is not None:
            return read_snapshot(config.repo, commit)
    raise WatcherError(
        f"{config.repo}: no commit to read ({tracking_ref(config)} and HEAD are "
        "both missing)",
        hint="clone the coordination repository, or run `build-watcher init`",
    )


def backoff(attempt_number: int) -> float:
    """Full jitter: uniform in [0, base * 2^n], capped, so racers spread out."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt_number)
    return random.uniform(0, ceiling)
