"""Configured handlers: an event kind and an argument list to run for it.

    [[handlers]]
    event = "job.queued"          # an event kind, or "*" for every kind
    command = ["/usr/local/bin/notify-team", "--job", "{subject}"]
    timeout = 60

The command runs without a shell, in the checkout, in a process group of its
own, with the event as one JSON object on standard input and these variables in
its environment: BUILD_WATCHER_EVENT (the kind), BUILD_WATCHER_EVENT_ID,
BUILD_WATCHER_NODE (this server), BUILD_WATCHER_REPO (the checkout). Its output
is logged. After `timeout` seconds it is stopped (SIGTERM, then SIGKILL).

Repository data reaches the arguments only through a placeholder the person who
wrote the configuration put there: {kind} {event_id} {subject} {path} {commit}
{actor} {node}. Any other `{word}` of lowercase letters is refused when the
configuration is read (a misspelt placeholder); other braces are kept as they
are. A placeholder whose value would start with "-" (and so read as an option)
or hold a control character is refused and the command is not run.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from loguru import logger

from watcher.config import Config, HandlerCommand
from watcher.errors import UsageError, WatcherError
from watcher.events import Event, EventKind
from watcher.process import environment, spawn_group, stop_group

if TYPE_CHECKING:
    from loguru import Logger

PLACEHOLDERS = ("kind", "event_id", "subject", "path", "commit", "actor", "node")
EVERY_KIND = "*"
OUTPUT_LIMIT = 4096
_FIELD = re.compile(r"\{([a-z_]+)\}")
_UNSAFE = re.compile(r"^-|[\x00-\x1f\x7f]")


def check_handlers(specs: Sequence[HandlerCommand], where: str) -> None:
    """Refuse unknown event kinds and placeholders once, at start or reload."""
    kinds = {kind.value for kind in EventKind}
    for index, spec in enumerate(specs):
        if spec.event != EVERY_KIND and spec.event not in kinds:
            raise UsageError(
                f"{where}: handlers[{index}].event is {spec.event!r}, "
                "not an event kind",
                hint=f"use one of {', '.join(sorted(kinds))}, or {EVERY_KIND!r}",
            )
        for argument in spec.command:
            for name in _FIELD.findall(argument):
                if name not in PLACEHOLDERS:
                    raise UsageError(
                        f"{where}: handlers[{index}].command uses {{{name}}}, "
                        "which is not a placeholder",
                        hint=f"placeholders: {', '.join(PLACEHOLDERS)}",
                    )


def expand(template: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """The argument list with placeholders filled; WatcherError if a value is unsafe."""
    for name, value in values.items():
        if _UNSAFE.search(value):
            raise WatcherError(
                f"the {{{name}}} value {value!r} is unsafe as an argument"
            )

    def fill(match: re.Match[str]) -> str:
        return values.get(match.group(1), match.group(0))

    return [_FIELD.sub(fill, argument) for argument in template]


def placeholder_values(event: Event, node: str) -> dict[str, str]:
    return {
        "kind": event.kind.value,
        "event_id": event.id,
        "subject": event.subject,
        "path": event.path,
        "commit": event.commit or "",
        "actor": event.actor or "",
        "node": node,
    }


class CommandHandler:
    """Runs one configured command for an event; one child at a time."""

    def __init__(self, spec: HandlerCommand, config: Config) -> None:
        self.spec = spec
        self.config = config
        self._running: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.spec.command[0]

    def __call__(self, event: Event) -> None:
        log = logger.bind(event=event.id, kind=event.kind.value, handler=self.name)
        try:
            arguments = expand(self.spec.command, placeholder_values(event, self._node))
        except WatcherError as error:
            log.warning("handler command not run: {why}", why=error.message)
            return
        status, output = self._run(arguments, event)
        self._log_outcome(log, status, output)

    @property
    def _node(self) -> str:
        return self.config.require_node()

    def _run(self, arguments: list[str], event: Event) -> tuple[int | None, str]:
        """Exit status (None after a timeout) and the output, trimmed."""
        env = environment(
            {
                "BUILD_WATCHER_EVENT": event.kind.value,
                "BUILD_WATCHER_EVENT_ID": event.id,
                "BUILD_WATCHER_NODE": self._node,
                "BUILD_WATCHER_REPO": str(self.config.repo),
            }
        )
        with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as output:
            stdin.write(
                json.dumps(event.to_json(), ensure_ascii=False).encode() + b"\n"
            )
            stdin.seek(0)
            child = spawn_group(
                arguments,
                cwd=self.config.repo,
                env=env,
                output=output.fileno(),
                stdin=stdin.fileno(),
            )
            status = self._wait(child)
            output.seek(0)
            return status, output.read(OUTPUT_LIMIT + 1).decode("utf-8", "replace")

    def _wait(self, child: subprocess.Popen[bytes]) -> int | None:
        with self._lock:
            self._running = child
        try:
            return child.wait(timeout=self.spec.timeout)
        except subprocess.TimeoutExpired:
            stop_group(child, self.config.kill_grace)
            return None
        finally:
            with self._lock:
                self._running = None

    def terminate(self) -> None:
        """Stop the child running now, if any (the daemon is shutting down)."""
        with self._lock:
            child = self._running
        if child is not None:
            stop_group(child, self.config.kill_grace)

    def _log_outcome(self, log: Logger, status: int | None, output: str) -> None:
        trimmed = output[:OUTPUT_LIMIT] + ("…" if len(output) > OUTPUT_LIMIT else "")
        log = log.bind(output=trimmed, status=status)
        if status is None:
            log.error(
                "handler command {handler} timed out after {timeout:.0f} s; stopped",
                handler=self.name,
                timeout=self.spec.timeout,
            )
        elif status != 0:
            log.error("handler command {handler} failed", handler=self.name)
        else:
            log.info("handler command {handler} ran", handler=self.name)


def build_handlers(config: Config) -> list[tuple[EventKind | None, CommandHandler]]:
    """The configured handlers, each with its kind (None: every kind)."""
    check_handlers(config.handlers, config.source)
    built = []
    for spec in config.handlers:
        kind = None if spec.event == EVERY_KIND else EventKind(spec.event)
        built.append((kind, CommandHandler(spec, config)))
    return built
