"""Settings as a person writes them: one TOML table, or `BUILD_WATCHER_*` variables.

Each value is checked against what it must be, and an error names the setting
where it was written (a file and its key, or the variable), what was expected and what
was found. `watcher.config` puts these together with flags and defaults.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watcher.errors import UsageError

ENV_PREFIX = "BUILD_WATCHER_"
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("auto", "text", "json")


@dataclass(frozen=True)
class JobType:
    """How to run one job type; an empty command means the built-in default."""

    name: str
    command: tuple[str, ...] = ()
    timeout: float | None = None


@dataclass(frozen=True)
class HandlerCommand:
    """A command run for every event of one kind, the event as JSON on stdin."""

    event: str
    command: tuple[str, ...]
    timeout: float = 60.0


@dataclass(frozen=True)
class ReplyRule:
    """An automatic reply to messages that match every field given."""

    message_type: str | None = None
    sender: str | None = None
    subject: str | None = None
    reply: str | None = None
    command: tuple[str, ...] = ()


@dataclass(frozen=True)
class Origin:
    """Where a group of settings was read from: a config file, else the environment.

    Errors name a setting as the person wrote it, so they know what to change.
    """

    file: Path | None = None

    def of(self, key: str) -> str:
        if self.file is None:
            return ENV_PREFIX + key.upper()
        return f"{self.file}: `{key}`"

    def __str__(self) -> str:
        return str(self.file or "the environment")


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise UsageError(
            f"{path}: not valid TOML: {error}",
            hint="fix the syntax; `build-watcher init` writes a commented example",
        ) from error
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot read: {error}") from error


def expect_type(table: dict[str, Any], key: str, kind: type, where: Origin) -> Any:
    value = table[key]
    numeric = kind is float and isinstance(value, int) and not isinstance(value, bool)
    if not (isinstance(value, kind) and not isinstance(value, bool)) and not numeric:
        raise UsageError(
            f"{where.of(key)} must be {kind.__name__}, "
            f"found {type(value).__name__} {value!r}"
        )
    return float(value) if kind is float else value


def _positive(table: dict[str, Any], key: str, kind: type, where: Origin) -> Any:
    value = expect_type(table, key, kind, where)
    if value <= 0:
        raise UsageError(f"{where.of(key)} must be greater than 0, found {value}")
    return value


_SCALARS: dict[str, tuple[str, type]] = {
    "node": ("node", str),
    "remote": ("remote", str),
    "branch": ("branch", str),
    "poll_interval": ("poll_interval", float),
    "heartbeat_interval": ("heartbeat_interval", float),
    "stale_after": ("stale_after", float),
    "lease_margin": ("lease_margin", float),
    "concurrency": ("concurrency", int),
    "max_attempts": ("max_attempts", int),
    "build_timeout": ("build_timeout", float),
    "kill_grace": ("kill_grace", float),
    "transaction_timeout": ("transaction_timeout", float),
    "max_thread_depth": ("max_thread_depth", int),
    "max_replies_per_peer_per_hour": ("max_replies_per_peer_per_hour", int),
    "log_format": ("log_format", str),
    "log_level": ("log_level", str),
}
_KNOWN_KEYS = set(_SCALARS) | {
    "repo",
    "labels",
    "state_dir",
    "workspace_dir",
    "job_types",
    "handlers",
    "reply_rules",
}


def settings_from_table(table: dict[str, Any], where: Origin) -> dict[str, Any]:
    unknown = sorted(set(table) - _KNOWN_KEYS)
    if unknown:
        raise UsageError(
            f"{where}: unknown setting(s) {', '.join(unknown)}",
            hint=f"known settings: {', '.join(sorted(_KNOWN_KEYS))}",
        )
    settings: dict[str, Any] = {}
    for key, (name, kind) in _SCALARS.items():
        if key in table:
            numeric = kind in (int, float) and key not in ("max_thread_depth",)
            check = _positive if numeric else expect_type
            settings[name] = check(table, key, kind, where)
    settings.update(_collections_from_table(table, where))
    _check_choices(settings, where)
    if "heartbeat_interval" in settings and "stale_after" not in settings:
        settings["stale_after"] = 3 * settings["heartbeat_interval"]
    return settings


def _collections_from_table(table: dict[str, Any], where: Origin) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if "labels" in table:
        settings["labels"] = tuple(_string_list(table["labels"], "labels", where))
    for key in ("state_dir", "workspace_dir"):
        if key in table:
            settings[key] = Path(expect_type(table, key, str, where)).expanduser()
    if "job_types" in table:
        settings["job_types"] = _job_types(table["job_types"], where)
    if "handlers" in table:
        settings["handlers"] = tuple(_handlers(table["handlers"], where))
    if "reply_rules" in table:
        settings["reply_rules"] = tuple(_reply_rules(table["reply_rules"], where))
    return settings


def _string_list(value: Any, key: str, where: Origin) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(
            f"{where}: `{key}` must be a list of strings, found {value!r}",
            hint='an argument list looks like ["make", "-C", "{workspace}"]',
        )
    return value


def _job_types(value: Any, where: Origin) -> dict[str, JobType]:
    if not isinstance(value, dict):
        raise UsageError(f"{where}: `job_types` must be a table of job types")
    types: dict[str, JobType] = {}
    for name, spec in value.items():
        if not isinstance(spec, dict):
            raise UsageError(f"{where}: `job_types.{name}` must be a table")
        command = _string_list(
            spec.get("command", []), f"job_types.{name}.command", where
        )
        timeout = spec.get("timeout")
        if timeout is not None:
            timeout = _positive(spec, "timeout", float, where)
        types[name] = JobType(name, tuple(command), timeout)
    return types


def _array_of_tables(value: Any, key: str, where: Origin) -> Iterator[tuple[str, Any]]:
    """Each entry of a TOML array of tables, with the label errors call it by."""
    if not isinstance(value, list):
        raise UsageError(f"{where}: `{key}` must be an array of tables")
    for index, spec in enumerate(value):
        yield f"{key}[{index}]", spec


def _handlers(value: Any, where: Origin) -> list[HandlerCommand]:
    handlers = []
    for label, spec in _array_of_tables(value, "handlers", where):
        if not isinstance(spec, dict) or "event" not in spec or "command" not in spec:
            raise UsageError(f"{where}: `{label}` needs `event` and `command`")
        command = _string_list(spec["command"], f"{label}.command", where)
        if not command:
            raise UsageError(f"{where}: `{label}.command` is empty")
        timeout = (
            _positive(spec, "timeout", float, where) if "timeout" in spec else 60.0
        )
        handlers.append(HandlerCommand(spec["event"], tuple(command), timeout))
    return handlers


def _reply_rules(value: Any, where: Origin) -> list[ReplyRule]:
    rules = []
    for label, spec in _array_of_tables(value, "reply_rules", where):
        if not isinstance(spec, dict) or ("reply" in spec) == ("command" in spec):
            raise UsageError(
                f"{where}: `{label}` needs exactly one of `reply`, `command`"
            )
        command = _string_list(spec.get("command", []), f"{label}.command", where)
        rules.append(
            ReplyRule(
                message_type=spec.get("type"),
                sender=spec.get("from"),
                subject=spec.get("subject"),
                reply=spec.get("reply"),
                command=tuple(command),
            )
        )
    return rules


def _check_choices(settings: dict[str, Any], where: Origin) -> None:
    for key, choices in (("log_format", LOG_FORMATS), ("log_level", LOG_LEVELS)):
        if key in settings and settings[key] not in choices:
            raise UsageError(
                f"{where.of(key)} must be one of {', '.join(choices)}, "
                f"found {settings[key]!r}"
            )


def settings_from_env(env: dict[str, str]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for key, (_, kind) in _SCALARS.items():
        raw = env.get(ENV_PREFIX + key.upper())
        if raw is None:
            continue
        try:
            table[key] = kind(raw)
        except ValueError as error:
            raise UsageError(
                f"{ENV_PREFIX}{key.upper()}={raw!r}: expected {kind.__name__}"
            ) from error
    return settings_from_table(table, Origin()) if table else {}
