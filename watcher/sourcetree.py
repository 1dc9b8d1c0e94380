"""A job's source tree: fetched shallow at the job's commit or branch, checked out.

Only the commit (or branch) asked for is fetched, with `--depth 1`. A full 40-digit
commit is fetched directly; a server that refuses that, or an abbreviated commit,
falls back to fetching the whole branch and finding the commit in it, which costs
the branch's history. The fetch may use only plain transports (`GIT_ALLOW_PROTOCOL`),
so a repository URL in the shared build configuration cannot run a command through
a remote helper such as `ext::`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from watcher.errors import WatcherError
from watcher.gitrepo import GitError, run_git
from watcher.recipes import SourceSpec

ALLOWED_PROTOCOLS = "file:git:http:https:ssh"
FULL_COMMIT_LENGTH = 40
_FETCH = ("fetch", "--quiet", "--no-tags", "--no-recurse-submodules")


def fetch_source(spec: SourceSpec, tree: Path, log: IO[bytes], deadline: float) -> str:
    """Fill the empty directory `tree` with `spec`'s source; return the commit built."""
    _git(["init", "--quiet"], tree, log, deadline)
    target = _fetch(spec, tree, log, deadline)
    checkout = ["-c", "advice.detachedHead=false", "checkout", "--quiet", "--force"]
    _git([*checkout, "--detach", target, "--"], tree, log, deadline)
    return _git(["rev-parse", "HEAD"], tree, log, deadline).strip()


def _fetch(spec: SourceSpec, tree: Path, log: IO[bytes], deadline: float) -> str:
    """Fetch what the job names; the object to check out."""
    if spec.commit is not None and len(spec.commit) == FULL_COMMIT_LENGTH:
        try:
            _git(
                [*_FETCH, "--depth", "1", "--", spec.repository, spec.commit],
                tree,
                log,
                deadline,
            )
            return spec.commit
        except GitError:
            _note(
                log, "fetching the commit directly failed; fetching its branch instead"
            )
    depth = ["--depth", "1"] if spec.commit is None else []
    ref = f"refs/heads/{spec.branch}"
    _git([*_FETCH, *depth, "--", spec.repository, ref], tree, log, deadline)
    if spec.commit is None:
        return "FETCH_HEAD"
    return _resolve_commit(spec, tree, log, deadline)


def _resolve_commit(
    spec: SourceSpec, tree: Path, log: IO[bytes], deadline: float
) -> str:
    assert spec.commit is not None
    try:
        found = _git(
            ["rev-parse", "--verify", "--quiet", f"{spec.commit}^{{commit}}"],
            tree,
            log,
            deadline,
        )
    except GitError as error:
        raise WatcherError(
            f"commit {spec.commit} is not on branch {spec.branch} of {spec.repository}",
            hint="submit the job with a commit that the branch contains",
        ) from error
    return found.strip()


def _git(args: Sequence[str], tree: Path, log: IO[bytes], deadline: float) -> str:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise WatcherError("the time for this job ran out while fetching its source")
    _note(log, "$ git " + " ".join(args))
    environment = {"GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS}
    try:
        output = run_git(args, cwd=tree, extra_env=environment, timeout=remaining)
    except GitError as error:
        log.write(error.stderr.encode("utf-8", "replace"))
        raise
    log.write(output)
    log.flush()
    return output.decode("utf-8", "replace")


def _note(log: IO[bytes], line: str) -> None:
    log.write(f"[build-watcher] {line}\n".encode("utf-8", "replace"))
    log.flush()
