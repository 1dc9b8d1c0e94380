"""Every child process starts here: argument lists only, never a shell."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from watcher.errors import WatcherError

GROUP_POLL_INTERVAL = 0.05
KILL_WAIT = 5.0


class ProcessError(WatcherError):
    """A child process failed: carries the command, its exit status and stderr."""

    def __init__(
        self, command: Sequence[str], returncode: int, stderr: str, hint: str = ""
    ) -> None:
        shown = " ".join(command)
        detail = stderr.strip() or "(no output on stderr)"
        super().__init__(
            f"`{shown}` failed with exit status {returncode}: {detail}",
            hint=hint or None,
        )
        self.command = tuple(command)
        self.returncode = returncode
        self.stderr = stderr


def run(
    command: Sequence[str],
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    input_bytes: bytes | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run `command` to completion and capture its output as bytes."""
    try:
        completed = subprocess.run(
            list(command),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            input=input_bytes,
            capture_output=True,
            check=False,
            timeout=timeout,
        )
    except (FileNotFoundError, NotADirectoryError) as error:
        raise not_started(command, cwd, env, error) from error
    except subprocess.TimeoutExpired as error:
        raise ProcessError(command, -1, f"timed out after {timeout} s") from error
    if check and completed.returncode != 0:
        raise ProcessError(command, completed.returncode, _text(completed.stderr))
    return completed


def not_started(
    command: Sequence[str],
    cwd: str | Path | None,
    env: Mapping[str, str] | None,
    error: OSError,
) -> WatcherError:
    """Why `command` did not start: the directory to run it in, or the program.

    The operating system says "no such file" for either; only a program that is
    really missing is reported as one.
    """
    program = command[0]
    if cwd is not None and not Path(cwd).is_dir():
        problem = "is not a directory" if Path(cwd).exists() else "no such directory"
        return WatcherError(
            f"cannot run `{program}` in {cwd}: {problem}",
            hint="check the path: --repo, or `repo`, `state_dir` or `workspace_dir` "
            "in the configuration",
        )
    if shutil.which(program, path=(os.environ if env is None else env).get("PATH")):
        return WatcherError(
            f"cannot run `{program}`: {error.strerror}: {error.filename}",
            hint="if it is a script, check the interpreter on its #! line",
        )
    return WatcherError(
        f"cannot run `{program}`: not found",
        hint=f"install {program} or put it on PATH",
    )


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment plus `extra`."""
    merged = dict(os.environ)
    merged.update(extra or {})
    return merged


def spawn_group(
    command: Sequence[str],
    *,
    cwd: str | Path,
    env: Mapping[str, str],
    output: int,
    stdin: int = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """Start `command` as the leader of a new session and process group.

    Its standard output and error go straight to the file descriptor `output` (never
    a pipe nobody reads, so a chatty child cannot stall) and its standard input is
    empty (or the file descriptor `stdin`), so it cannot wait for a person.
    """
    try:
        return subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdin=stdin,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except (FileNotFoundError, NotADirectoryError) as error:
        raise not_started(command, cwd, env, error) from error
    except PermissionError as error:
        raise WatcherError(
            f"cannot run `{command[0]}`: {error.strerror}",
            hint=f"install {command[0]} or put it on PATH, or correct the command",
        ) from error


def live_group_members(group: int) -> list[int]:
    """Processes of process group `group` that still run (zombies count as gone)."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return []
    except PermissionError:
        pass
    # Imported here: psutil costs milliseconds the pre-commit hook's path does not need.
    import psutil

    members = []
    for candidate in psutil.process_iter(["status"]):
        try:
            if os.getpgid(candidate.pid) != group:
                continue
        except (ProcessLookupError, PermissionError):
            continue
        if candidate.info["status"] != psutil.STATUS_ZOMBIE:
            members.append(candidate.pid)
    return members


def stop_group(leader: subprocess.Popen[bytes], grace: float) -> list[int]:
    """Stop the whole group `leader` leads: SIGTERM, up to `grace` s, then SIGKILL.

    Returns the processes still alive afterwards (empty unless one escaped the
    group or cannot be killed). A process that called setsid() itself has left the
    group and is out of reach here; only a cgroup would hold it.
    """
    group = leader.pid
    if _wait_group(leader, 0):
        return []
    _signal_group(group, signal.SIGTERM)
    if not _wait_group(leader, grace):
        _signal_group(group, signal.SIGKILL)
        _wait_group(leader, KILL_WAIT)
    leader.poll()
    return live_group_members(group)


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signum)


def _wait_group(leader: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait until the leader is reaped and no member of its group runs."""
    deadline = time.monotonic() + timeout
    while True:
        if leader.poll() is not None and not live_group_members(leader.pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(GROUP_POLL_INTERVAL)


def stop_detached_group(group: int, grace: float) -> list[int]:
    """Stop a process group that no process here waits for, in the same stages.

    For a build left running by a previous life of the daemon: its leader is no
    child of this process, so only the group's membership can be watched.
    """
    if not live_group_members(group):
        return []
    _signal_group(group, signal.SIGTERM)
    if not _wait_members(group, grace):
        _signal_group(group, signal.SIGKILL)
        _wait_members(group, KILL_WAIT)
    return live_group_members(group)


def _wait_members(group: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while live_group_members(group):
        if time.monotonic() >= deadline:
            return False
        time.sleep(GROUP_POLL_INTERVAL)
    return True
