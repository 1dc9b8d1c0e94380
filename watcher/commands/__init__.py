"""One module per subcommand.

Each module defines `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`.
Modules import only the standard library and light parts of the package at module
level, so that the pre-commit hook's path stays fast; heavy imports (GitPython,
watchdog, loguru) happen inside `run`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommandSpec:
    name: str
    summary: str
    logs: bool = True


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("init", "make a checkout ready: layout, identity, hooks"),
    CommandSpec("validate", "validate coordination files", logs=False),
    CommandSpec("watch", "run the daemon in the foreground"),
    CommandSpec("submit", "queue a job"),
    CommandSpec("jobs", "list jobs"),
    CommandSpec("cancel", "cancel a job"),
    CommandSpec("send", "send a message to a server or to all"),
    CommandSpec("inbox", "list messages for this server"),
    CommandSpec("read", "mark messages as read by this server"),
    CommandSpec("messages", "maintain the message store (archive)"),
    CommandSpec("locks", "list, acquire or release named leases"),
    CommandSpec("status", "show the fleet: servers, jobs, locks, unread messages"),
    CommandSpec("dashboard", "write the fleet view as one static HTML page"),
    CommandSpec("log", "replay history as events"),
    CommandSpec("hooks", "install or uninstall the git hooks and merge driver"),
    CommandSpec("hook", "run a git hook (called by the installed hooks)", logs=False),
    CommandSpec("merge-driver", "merge a coordination file by record id (git)"),
    CommandSpec("migrate", "rewrite a legacy repository in the strict format"),
    CommandSpec("demo", "run a small fleet locally, end to end"),
    CommandSpec("completion", "print a bash completion script", logs=False),
)

BY_NAME = {spec.name: spec for spec in COMMANDS}


def module_name(command: str) -> str:
    return "watcher.commands." + command.replace("-", "_")
