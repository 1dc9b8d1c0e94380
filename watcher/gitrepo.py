"""The one module that talks to git.

Fast, short-lived paths (the pre-commit hook, `validate`) call the `git` command
through `run_git`; long-running paths (transactions, the daemon) use GitPython on top
of the same environment rules. Inherited `GIT_*` variables are dropped before git
touches a repository, and git never waits for a person.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from watcher import process
from watcher.errors import UsageError, WatcherError

MINIMUM_GIT = (2, 30)
_HEX = re.compile(r"^[0-9a-f]{4,64}$")


class GitError(process.ProcessError):
    """A git command failed."""


def git_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for git: no inherited `GIT_*`, no prompts, ssh in batch mode."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_ASKPASS"] = "true"
    env["SSH_ASKPASS"] = "true"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes -o ConnectTimeout=10")
    env["LC_ALL"] = "C"
    env.update(extra or {})
    return env


def run_git(
    args: Sequence[str],
    cwd: str | Path,
    *,
    input_bytes: bytes | None = None,
    extra_env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float | None = 300,
) -> bytes:
    """Run `git ARGS` in `cwd` and return its standard output."""
    command = ["git", *args]
    completed = process.run(
        command,
        cwd=cwd,
        env=git_environment(extra_env),
        input_bytes=input_bytes,
        check=False,
        timeout=timeout,
    )
    if check and completed.returncode != 0:
        raise GitError(
            command, completed.returncode, completed.stderr.decode("utf-8", "replace")
        )
    return completed.stdout


def git_version() -> tuple[int, ...]:
    out = run_git(["--version"], cwd=os.getcwd()).decode()
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", out)
    if not match:
        raise WatcherError(f"cannot read the git version from {out!r}")
    return tuple(int(part) for part in match.groups() if part is not None)


def check_git_version() -> None:
    """Refuse to run on a git older than the features the product relies on."""
    found = git_version()
    if found[:2] < MINIMUM_GIT:
        wanted = ".".join(map(str, MINIMUM_GIT))
        raise UsageError(
            f"git {'.'.join(map(str, found))} is too old; "
            f"build-watcher needs {wanted} or newer",
            hint="install a newer git from your distribution's backports",
        )


def toplevel(path: str | Path) -> Path:
    """The root of the checkout containing `path`."""
    try:
        out = run_git(["rev-parse", "--show-toplevel"], cwd=path)
    except (GitError, NotADirectoryError, FileNotFoundError) as error:
        raise UsageError(
            f"{path} is not inside a git checkout",
            hint="pass --repo PATH to the checkout of the coordination repository",
        ) from error
    return Path(out.decode().strip())


def is_hex_object_name(name: str) -> bool:
    return bool(_HEX.match(name))


def check_ref_format(name: str, *, branch: bool = True) -> bool:
    """Whether `name` is a well-formed branch (or ref) name, as git itself judges."""
    if not name or name.startswith("-"):
        return False
    args = (
        ["check-ref-format", "--branch", name] if branch else ["check-ref-format", name]
    )
    try:
        run_git(args, cwd=os.getcwd())
    except GitError:
        return False
    return True
