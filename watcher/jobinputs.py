"""The fields of a job that reach a command line, checked before anything runs.

A job comes from the shared repository, so anyone who can push can write it. Its
branch, commit and id end up as arguments of git and of build commands and its id
names a directory, so each is held to a narrow form here: a branch git itself accepts
(`git check-ref-format --branch`) that cannot be read as an option, a commit of 7 to
40 hex digits, an id that is a plain file name. A job that fails is reported failed
with every reason, and nothing is executed for it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from watcher.errors import WatcherError
from watcher.gitrepo import check_ref_format

MAX_NAME_LENGTH = 128
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_COMMIT = re.compile(r"^[0-9a-fA-F]{7,40}$")


class InvalidJobError(WatcherError):
    """A job whose fields are unsafe or malformed: it must not run."""

    def __init__(self, job_id: str, reasons: list[str]) -> None:
        super().__init__(
            f"job {job_id}: {'; '.join(reasons)}",
            hint="submit the job again with corrected fields "
            "(`build-watcher submit --type TYPE --branch BRANCH [--commit SHA]`)",
        )
        self.job_id = job_id
        self.reasons = tuple(reasons)


@dataclass(frozen=True)
class JobInputs:
    """The checked fields of one job: safe to use as arguments and file names."""

    job_id: str
    job_type: str
    branch: str | None = None
    commit: str | None = None
    timeout: float | None = None
    attempt: int | None = None


def is_plain_name(name: object) -> bool:
    """A name usable as one path component: no separators, no leading dot or dash."""
    return (
        isinstance(name, str)
        and len(name) <= MAX_NAME_LENGTH
        and bool(_PLAIN_NAME.match(name))
    )


def branch_problem(branch: object) -> str | None:
    """Why `branch` is unusable, or None when it is a safe branch name."""
    if not isinstance(branch, str) or not branch:
        return f"branch must be a non-empty string, found {branch!r}"
    if branch.startswith("-"):
        return f"branch {branch!r} starts with '-' and would be read as an option"
    if not check_ref_format(branch):
        return (
            f"branch {branch!r} is not a valid branch name "
            "(rejected by `git check-ref-format --branch`)"
        )
    return None


def commit_problem(commit: object) -> str | None:
    """Why `commit` is unusable, or None when it is 7 to 40 hex digits."""
    if isinstance(commit, str) and _COMMIT.match(commit):
        return None
    return f"commit must be 7 to 40 hex digits, found {commit!r}"


def job_input_problems(job: Mapping[str, Any]) -> list[str]:
    """Every reason this job must not run; empty when it is safe."""
    problems = []
    if not is_plain_name(job.get("id")):
        problems.append(f"id {job.get('id')!r} is not safe as a file name")
    if not is_plain_name(job.get("type")):
        problems.append(f"type {job.get('type')!r} is not a plain name")
    if job.get("branch") is not None:
        problems.append(branch_problem(job["branch"]) or "")
    if job.get("commit") is not None:
        problems.append(commit_problem(job["commit"]) or "")
    if job.get("timeout") is not None and not _is_positive_number(job["timeout"]):
        problems.append(f"timeout must be a positive number, found {job['timeout']!r}")
    return [problem for problem in problems if problem]


def check_job_inputs(job: Mapping[str, Any]) -> JobInputs:
    """The checked inputs of `job`, or InvalidJobError naming every problem."""
    problems = job_input_problems(job)
    if problems:
        raise InvalidJobError(str(job.get("id")), problems)
    commit = job.get("commit")
    attempt = job.get("attempt")
    return JobInputs(
        job_id=job["id"],
        job_type=job["type"],
        branch=job.get("branch"),
        commit=commit.lower() if isinstance(commit, str) else None,
        timeout=float(job["timeout"]) if job.get("timeout") is not None else None,
        attempt=attempt if isinstance(attempt, int) else None,
    )


def _is_positive_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value > 0
