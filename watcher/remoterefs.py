"""Refs shared with the remote: fetch, push and the lock that keeps them apart.

Every fetch, push and update of a remote-tracking ref by build-watcher goes
through here under `ref_lock`; failures are classified as the remote being
unreachable (an outage to wait out offline) or refusing access (configuration to
fix). A push is a plain compare-and-swap, never forced.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import functools
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from watcher.errors import UsageError, WatcherError
from watcher.gitrepo import (
    GitError,
    git_error,
    is_remote_name,
    resolve_commit,
    run_git,
    run_git_process,
)


class RemoteUnreachable(WatcherError):
    """The remote could not be contacted (network, host down, path missing)."""


class RemoteAccessDenied(WatcherError):
    """The remote answered but refused us: unknown host key, bad credentials."""


_DENIED = (
    "host key verification failed",
    "permission denied",
    "authentication failed",
    "could not read username",
    "could not read password",
    "terminal prompts disabled",
    "access denied",
)
_UNREACHABLE = (
    "could not read from remote repository",
    "does not appear to be a git repository",
    "unable to access",
    "could not resolve host",
    "connection refused",
    "connection timed out",
    "operation timed out",
    "timed out after",
    "network is unreachable",
    "no route to host",
    "connection closed",
    "connection reset",
    "unable to connect",
    "the remote end hung up",
)


def remote_failure(error: GitError, remote: str) -> WatcherError:
    """Classify a failed fetch or push: denied, unreachable, or another git error.

    Access problems are configuration to fix, not an outage to wait out, so they
    are never mistaken for "offline" (which would queue operations forever).
    """
    text = error.stderr.lower()
    first_line = next((ln for ln in error.stderr.splitlines() if ln.strip()), "")
    if is_unknown_remote_name(error.stderr, remote):
        return UsageError(
            f"this checkout has no remote named {remote!r}",
            hint="set `remote` to a name that `git remote -v` lists, or to the "
            "coordination repository's URL",
        )
    if any(marker in text for marker in _DENIED):
        return RemoteAccessDenied(
            f"remote {remote!r} refused access: {first_line.strip()}",
            hint="check the remote's host key (ssh-keyscan into known_hosts) and "
            "this server's credentials; git never prompts here",
        )
    if any(marker in text for marker in _UNREACHABLE):
        return RemoteUnreachable(
            f"remote {remote!r} cannot be reached: {first_line.strip()}",
            hint="operations wait in the offline queue until it is back",
        )
    return error


def is_unknown_remote_name(stderr: str, remote: str) -> bool:
    """Whether git took `remote` for a path because no remote has that name.

    A configured remote whose repository is missing is named by its URL in git's
    message, and is an outage to wait out; a misspelt name is a setting to fix.
    """
    missing = f"'{remote}' does not appear to be a git repository" in stderr
    return is_remote_name(remote) and missing


_REF_LOCK_RACE = ("cannot lock ref", "unable to update local ref", "is at ")
RACE_TRIES = 5
NETWORK_TIMEOUT = 120.0
# A person's `push.gpgSign` would make every push ask gpg (a prompt, or a failure
# on a server without signed pushes): the product's pushes are never signed, and
# they skip the checkout's hooks.
PLAIN_PUSH = ("--no-verify", "--no-signed")
REF_LOCK_FILE = "build-watcher/refs.lock"


@functools.lru_cache(maxsize=64)
def _ref_lock_path(repo: Path) -> Path:
    out = run_git(["rev-parse", "--git-common-dir"], repo).decode().strip()
    return (repo / out).resolve() / REF_LOCK_FILE


@contextlib.contextmanager
def ref_lock(repo: Path) -> Iterator[None]:
    """Move this checkout's remote-tracking refs alone: one fetch, push or ref
    update at a time across every build-watcher process and thread.

    git updates a ref only if it still holds the value git read first, so two
    fetches (the daemon's poll and a command's transaction) racing for the same
    tracking ref make one fail with "cannot lock ref ... is at X but expected Y".
    The lock lives in the git directory, which every process that moves these
    refs shares whatever its `state_dir`. A holder waits at most for its own git
    command's timeout.
    """
    path = _ref_lock_path(Path(repo))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def fetch_refs(
    repo: Path, remote: str, refspecs: Sequence[str], *, prune: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """`git fetch` of `refspecs` under the ref lock, whatever its exit status.

    A git outside build-watcher (a person's `git fetch`) does not take the lock;
    a race with it is retried quietly, since either fetch leaves a tip the remote
    really had.
    """
    args = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head"]
    args += ["--prune", remote, *refspecs] if prune else [remote, *refspecs]
    for attempt in range(1, RACE_TRIES + 1):
        with ref_lock(repo):
            completed = run_git_process(args, repo, timeout=NETWORK_TIMEOUT)
        if completed.returncode == 0 or attempt == RACE_TRIES:
            return completed
        if not any(race in git_error(completed).stderr for race in _REF_LOCK_RACE):
            return completed
        time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def fetch_branch(repo: Path, remote: str, branch: str, tracking_ref: str) -> str | None:
    """Fetch `branch` from `remote` into `tracking_ref`; its tip, or None if absent."""
    completed = fetch_refs(repo, remote, [f"+refs/heads/{branch}:{tracking_ref}"])
    if completed.returncode == 0:
        return resolve_commit(repo, tracking_ref)
    error = git_error(completed)
    if "couldn't find remote ref" in error.stderr:
        return None
    raise remote_failure(error, remote)


class PushStatus(enum.Enum):
    """What `git push --porcelain` said about our ref, flag by flag."""

    PUSHED = "pushed"  # ' ' fast-forward or '*' new ref
    UP_TO_DATE = "up to date"  # '=': the remote already names exactly this commit
    REJECTED = "rejected"  # '!' [rejected]: someone else wrote first
    REMOTE_REJECTED = "remote rejected"  # '!' [remote rejected]: a hook or a ref lock


@dataclass(frozen=True)
class PushResult:
    status: PushStatus
    summary: str


_PUSH_FLAGS = {
    " ": PushStatus.PUSHED,
    "*": PushStatus.PUSHED,
    "=": PushStatus.UP_TO_DATE,
}


def push_commit(repo: Path, remote: str, commit: str, branch: str) -> PushResult:
    """Offer `commit` as the new tip of `branch`: a plain push is a compare-and-swap.

    Never forced: the remote accepts it only if it descends from the current tip.
    Raises RemoteUnreachable / RemoteAccessDenied when the remote did not answer.
    """
    target = f"refs/heads/{branch}"
    args = ["push", "--porcelain", *PLAIN_PUSH, remote, f"{commit}:{target}"]
    with ref_lock(repo):  # a push to a named remote moves its tracking ref too
        completed = run_git_process(args, repo, timeout=NETWORK_TIMEOUT)
    for line in completed.stdout.decode("utf-8", "replace").splitlines():
        flag, _, rest = line.partition("\t")
        refs, _, summary = rest.partition("\t")
        if len(flag) != 1 or refs.rpartition(":")[2] != target:
            continue
        if flag in _PUSH_FLAGS:
            return PushResult(_PUSH_FLAGS[flag], summary)
        if "remote rejected" in summary:
            return PushResult(PushStatus.REMOTE_REJECTED, summary)
        return PushResult(PushStatus.REJECTED, summary)
    raise remote_failure(git_error(completed), remote)


def update_ref(repo: Path, ref: str, new: str, old: str | None) -> bool:
    """Move `ref` to `new` only if it still names `old`; whether it moved."""
    args = ["update-ref", ref, new, old or "0" * 40]
    with ref_lock(repo):
        return run_git_process(args, repo).returncode == 0
