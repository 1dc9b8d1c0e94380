"""The one expected-error type, and the exit codes it maps to."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class WatcherError(Exception):
    """A failure the user can act on: what went wrong, where, and how to fix it.

    `hint` is the next step to take (often a command to run). `exit_code` is 1 for a
    failure the command reports and 2 for a usage or configuration error.
    """

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UsageError(WatcherError):
    """The command line or the configuration is wrong."""

    exit_code = EXIT_USAGE
