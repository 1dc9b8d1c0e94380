"""The checkout a person may be working in: brought along only when that is clean.

Transactions never touch the checkout to write; afterwards they fast-forward it to
the commit they pushed when nothing can be lost: HEAD is on the branch, has no
commits the remote lacks, and the files between HEAD and the new commit are
unmodified in the index and the work tree. Otherwise the checkout is left alone
and a warning says why. Hand edits are never reset away.

`index.lock` rule. git creates `index.lock` while it changes the index and removes
it when done; a crashed git leaves it behind and every later git refuses to work.
A lock is waited for briefly, then reported ("repository locked", naming the file).
It is removed only when provably stale: older than `STALE_LOCK_AGE`, no process
has the file open, and no git process is running with its working directory in
the repository (a `git commit` waiting for its editor holds the lock without an
open descriptor, so both checks are needed). A git process whose directory we
may not read counts as working here; other users' descriptors cannot be read and
are not considered.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from loguru import logger

from watcher.errors import WatcherError
from watcher.gitrepo import GitError, run_git, run_git_process

LOCK_WAIT = 3.0
STALE_LOCK_AGE = 600.0


class RepositoryLocked(WatcherError):
    """Another git holds the checkout's index.lock."""


def fast_forward(repo: Path, branch: str, commit: str) -> bool:
    """Fast-forward the checkout at `repo` to `commit` when clean; whether it did.

    Besides the checks here, `git merge --ff-only` itself refuses to touch a file
    that has uncommitted changes (staged or not) or to overwrite an untracked file,
    so nothing a person did is lost; its refusal becomes the warning.
    """
    state = _checkout_state(repo)
    reason = _reason_not_to_fast_forward(repo, branch, commit, state)
    if reason is None:
        try:
            wait_for_index_lock(repo, lock=state.lock)
            run_git(["merge", "--ff-only", "--quiet", commit], repo)
            return True
        except (RepositoryLocked, GitError) as error:
            reason = _first_line(error.message)
    if reason:
        logger.bind(repo=str(repo), commit=commit).warning(
            "checkout left as it is: {reason}", reason=reason
        )
    return False


@dataclass(frozen=True)
class _CheckoutState:
    is_bare: bool
    lock: Path
    head: str | None
    head_ref: str | None


def _checkout_state(repo: Path) -> _CheckoutState:
    """Bare or not, the index lock's path, HEAD and its branch: one git process."""
    args = ["rev-parse", "--is-bare-repository", "--git-path", "index.lock"]
    completed = run_git_process([*args, "HEAD", "--symbolic-full-name", "HEAD"], repo)
    lines = completed.stdout.decode("utf-8", "surrogateescape").splitlines()
    if len(lines) < 2:
        raise GitError(args, completed.returncode, completed.stderr.decode())
    head = lines[2] if len(lines) > 3 and completed.returncode == 0 else None
    head_ref = lines[3] if head else None
    return _CheckoutState(
        lines[0] == "true", (repo / lines[1]).resolve(), head, head_ref
    )


def _reason_not_to_fast_forward(
    repo: Path, branch: str, commit: str, state: _CheckoutState
) -> str | None:
    """Why the checkout must be left alone; '' when already there, None to go ahead."""
    if state.is_bare or state.head == commit:
        return ""
    if state.head is None and _unborn_branch(repo) == f"refs/heads/{branch}":
        return None  # a fresh clone of an empty remote: nothing here to lose
    if state.head is None or state.head_ref != f"refs/heads/{branch}":
        return f"HEAD is not on {branch}"
    ancestry = run_git_process(
        ["merge-base", "--is-ancestor", state.head, commit], repo
    )
    if ancestry.returncode != 0:
        return f"{branch} has commits the remote does not have; pull or push them"
    return None


def _unborn_branch(repo: Path) -> str | None:
    """The branch HEAD names while it has no commit yet, else None."""
    completed = run_git_process(["symbolic-ref", "--quiet", "HEAD"], repo)
    return completed.stdout.decode().strip() or None


def _first_line(message: str) -> str:
    return next((line for line in message.splitlines() if line.strip()), message)


def index_lock_path(repo: Path) -> Path:
    out = run_git(["rev-parse", "--git-path", "index.lock"], repo).decode().strip()
    return (repo / out).resolve()


def wait_for_index_lock(
    repo: Path, timeout: float = LOCK_WAIT, lock: Path | None = None
) -> None:
    """Return once the index is free; remove a provably stale lock; else raise."""
    lock = lock or index_lock_path(repo)
    deadline = time.monotonic() + timeout
    while lock.exists():
        if time.monotonic() >= deadline:
            if not is_stale_lock(lock, repo):
                raise RepositoryLocked(
                    f"repository locked: {lock} exists (another git is working here, "
                    "or one crashed)",
                    hint=f"if no git is running in {repo}, remove {lock}",
                )
            logger.bind(lock=str(lock)).warning("removing a stale index.lock")
            lock.unlink(missing_ok=True)
            return
        time.sleep(0.05)


def is_stale_lock(lock: Path, repo: Path, max_age: float = STALE_LOCK_AGE) -> bool:
    """Old enough, open in no process, and no git process working in `repo`."""
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return True
    if age < max_age:
        return False
    return not _is_open_anywhere(lock) and not _has_git_process_in(repo.resolve())


def _is_open_anywhere(path: Path) -> bool:
    target = str(path.resolve())
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            entries = list(fd_dir.iterdir())
        except OSError:
            continue  # gone, or another user's process
        for entry in entries:
            try:
                if os.readlink(entry) == target:
                    return True
            except OSError:
                continue  # closed since the listing
    return False


def _has_git_process_in(repo: Path) -> bool:
    """A live git process working in `repo`; one whose directory we may not read counts.

    A process that ended (or is a zombie) while we looked is not working anywhere.
    """
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] not in ("git", "git-remote-http", "git-merge"):
            continue
        try:
            if Path(proc.cwd()).is_relative_to(repo):
                return True
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        except psutil.AccessDenied:
            return True
    return False
