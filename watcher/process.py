"""Every child process starts here: argument lists only, never a shell."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from watcher.errors import WatcherError


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
    except FileNotFoundError as error:
        raise WatcherError(
            f"cannot run `{command[0]}`: not found",
            hint=f"install {command[0]} or put it on PATH",
        ) from error
    except subprocess.TimeoutExpired as error:
        raise ProcessError(command, -1, f"timed out after {timeout} s") from error
    if check and completed.returncode != 0:
        raise ProcessError(command, completed.returncode, _text(completed.stderr))
    return completed


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment plus `extra`."""
    merged = dict(os.environ)
    merged.update(extra or {})
    return merged
