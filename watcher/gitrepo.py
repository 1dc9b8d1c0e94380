"""The one module that talks to git (with `watcher.remoterefs`, its remote half).

Fast, short-lived paths (the pre-commit hook, `validate`) call the `git` command
through `run_git`; long-running paths (transactions, the daemon) use GitPython on top
of the same environment rules. Inherited `GIT_*` variables are dropped before git
touches a repository, and git never waits for a person.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from watcher import process
from watcher.errors import UsageError, WatcherError

MINIMUM_GIT = (2, 30)
_HEX = re.compile(r"^[0-9a-f]{4,64}$")
_REMOTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class GitError(process.ProcessError):
    """A git command failed."""


def git_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for git: no inherited `GIT_*`, no prompts, ssh in batch mode."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_ASKPASS"] = "true"
    env["SSH_ASKPASS"] = "true"
    env["GIT_SSH_COMMAND"] = f"ssh {_BATCH_OPTIONS}"
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
    completed = run_git_process(
        args, cwd, input_bytes=input_bytes, extra_env=extra_env, timeout=timeout
    )
    if check and completed.returncode != 0:
        raise git_error(completed)
    return completed.stdout


def run_git_process(
    args: Sequence[str],
    cwd: str | Path,
    *,
    input_bytes: bytes | None = None,
    extra_env: Mapping[str, str] | None = None,
    timeout: float | None = 300,
) -> subprocess.CompletedProcess[bytes]:
    """Run `git ARGS` to completion and return it, whatever its exit status."""
    if args and args[0] in _NETWORK_COMMANDS:
        extra_env = {"GIT_SSH_COMMAND": ssh_command(Path(cwd)), **(extra_env or {})}
    return process.run(
        ["git", *args],
        cwd=cwd,
        env=git_environment(extra_env),
        input_bytes=input_bytes,
        check=False,
        timeout=timeout,
    )


_NETWORK_COMMANDS = frozenset({"fetch", "push", "pull", "ls-remote", "clone"})
_BATCH_OPTIONS = "-o BatchMode=yes -o ConnectTimeout=10"


@functools.lru_cache(maxsize=64)
def ssh_command(repo: Path) -> str:
    """The ssh git would use in `repo`, made unable to prompt.

    As git itself does, `GIT_SSH_COMMAND` from the caller's environment comes
    first, then the checkout's `core.sshCommand` (a deploy key, a known_hosts
    file), then plain `ssh`; batch mode is appended, so an unknown host key or a
    missing key fails at once instead of waiting for a person. Read once per
    repository per process: a changed `core.sshCommand` needs a restart.
    """
    base = os.environ.get("GIT_SSH_COMMAND")
    if not base:
        configured = process.run(
            ["git", "config", "--get", "core.sshCommand"],
            cwd=repo,
            env=git_environment(),
            check=False,
        )
        base = configured.stdout.decode().strip() or "ssh"
    return f"{base} {_BATCH_OPTIONS}"


def git_error(completed: subprocess.CompletedProcess[bytes]) -> GitError:
    stderr = (completed.stderr or b"").decode("utf-8", "replace")
    return GitError(
        [str(part) for part in completed.args], completed.returncode, stderr
    )


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
    except GitError as error:
        raise UsageError(
            f"{path} is not inside a git checkout",
            hint="pass --repo PATH to the checkout of the coordination repository",
        ) from error
    return Path(out.decode().strip())


def starting_directory(flag: str | None) -> Path:
    """The directory --repo names, checked, else the current one."""
    if flag:
        return checkout_directory(Path(flag), f"--repo {flag}")
    return Path.cwd()


def checkout_directory(path: Path, given: str) -> Path:
    """`path` resolved, or a usage error quoting how it was `given`."""
    if not path.exists():
        raise UsageError(
            f"{given}: no such directory",
            hint="give the path of a checkout of the coordination repository",
        )
    if not path.is_dir():
        raise UsageError(
            f"{given}: is not a directory",
            hint="give the checkout's directory, not a file in it",
        )
    return path.resolve()


def enclosing_checkout(directory: Path) -> Path:
    """The top of the checkout holding `directory` (itself outside any).

    From a subdirectory the identity file and the checkout's config file are
    found at the top, as the daemon finds them.
    """
    if (directory / ".git").exists():
        return directory.resolve()  # the top already: no git process needed
    try:
        return toplevel(directory).resolve()
    except UsageError:
        return directory.resolve()


def is_remote_name(remote: str) -> bool:
    """Whether `remote` names a configured remote rather than a URL or a path."""
    return bool(_REMOTE_NAME.match(remote))


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


@functools.cache
def require_git() -> None:
    """`check_git_version`, once per process (long-running callers ask every cycle)."""
    check_git_version()


def resolve_commit(repo: Path, rev: str) -> str | None:
    """The commit `rev` names, or None when it names nothing."""
    args = ["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"]
    completed = run_git_process(args, repo)
    if completed.returncode != 0:
        return None
    return completed.stdout.decode().strip() or None


# A person's `commit.gpgSign` would make every commit ask gpg (a prompt, or a
# failure on a server without a key): the product's own commits are never signed.
NO_SIGNING_COMMIT = "--no-gpg-sign"


def write_tree(
    repo: Path, base: str | None, changes: Mapping[str, bytes | None], index_file: Path
) -> str:
    """The tree of `base` with `changes` applied (None removes a path).

    Built in a private index file, so the checkout's index and `index.lock` are
    never touched and a person's staged work is never disturbed.
    """
    env = {"GIT_INDEX_FILE": str(index_file)}
    run_git(["read-tree", base or "--empty"], repo, extra_env=env)
    entries = []
    for path, data in changes.items():
        if data is None:
            entries.append(f"0 {'0' * 40}\t{path}")
        else:
            sha = run_git(["hash-object", "-w", "--stdin"], repo, input_bytes=data)
            entries.append(f"100644 {sha.decode().strip()}\t{path}")
    stdin = "".join(entry + "\0" for entry in entries).encode("utf-8")
    run_git(
        ["update-index", "-z", "--index-info"], repo, input_bytes=stdin, extra_env=env
    )
    return run_git(["write-tree"], repo, extra_env=env).decode().strip()


def commit_tree(
    repo: Path, tree: str, parent: str | None, message: str, identity: Mapping[str, str]
) -> str:
    """A commit object for `tree` on top of `parent`, by the given identity."""
    args = ["commit-tree", NO_SIGNING_COMMIT, tree, "-F", "-"]
    args += ["-p", parent] if parent else []
    out = run_git(args, repo, input_bytes=message.encode("utf-8"), extra_env=identity)
    return out.decode().strip()


def identity_environment(name: str, email: str) -> dict[str, str]:
    """Author and committer set explicitly: the user's git config plays no part."""
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }
