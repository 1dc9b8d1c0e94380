"""The commented example configuration `build-watcher init` writes.

Every setting appears with its default, taken from `Config` itself so the example
cannot drift from the code; a setting without a note here is a test failure.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from typing import Any

from watcher.commandhandler import PLACEHOLDERS
from watcher.config import CHECKOUT_CONFIG, SYSTEM_CONFIG, Config

NOT_SETTINGS = frozenset({"repo", "source"})

NOTES: dict[str, str] = {
    "node": "this server's id; else BUILD_WATCHER_NODE or the checkout's "
    ".build_server_id",
    "remote": "the git remote to coordinate through: a remote name or a URL",
    "branch": "the shared branch",
    "poll_interval": "seconds between fetches of the remote (give or take 10%)",
    "heartbeat_interval": "seconds between heartbeats on heartbeat/<node>",
    "stale_after": "seconds without a heartbeat change before a peer is stale "
    "(default: 3 x heartbeat_interval)",
    "lease_margin": "extra seconds a lapsed lease is watched before a takeover",
    "concurrency": "jobs this server runs at once",
    "labels": "labels this server offers to jobs that ask for them",
    "max_attempts": "runs of a job before it is given up",
    "build_timeout": "seconds a job may run unless its type or the job says otherwise",
    "kill_grace": "seconds between SIGTERM and SIGKILL when stopping a build or a "
    "handler command; also how long running handlers get at shutdown",
    "transaction_timeout": "seconds a write keeps retrying while other servers push "
    "first, before it fails",
    "job_types": "what each job type runs (see the example below)",
    "handlers": "commands run for events (see the example below)",
    "reply_rules": "automatic replies to messages (see the example below)",
    "max_thread_depth": "automatic replies stop at this depth of a thread",
    "max_replies_per_peer_per_hour": "automatic replies to one peer per hour, at most",
    "log_format": "auto (JSON under journald, text on a terminal), text or json",
    "log_level": "DEBUG, INFO, WARNING or ERROR",
    "state_dir": "private state: progress, offline queue, wake socket "
    "(default: <checkout>/.git/build-watcher)",
    "workspace_dir": "where jobs run (default: <state_dir>/workspaces)",
}

TABLES = f"""\
# What a job type runs: an argument list, never a shell. Placeholders: {{branch}}
# {{commit}} {{job_id}} {{workspace}} {{artifacts}}.
# [job_types.build]
# command = ["mvn", "-B", "-f", "{{workspace}}/pom.xml", "package"]
# timeout = 7200.0

# A command run for every event of a kind ("*" for all), the event as JSON on
# standard input, BUILD_WATCHER_EVENT and BUILD_WATCHER_NODE in its environment.
# Placeholders: {", ".join("{" + name + "}" for name in PLACEHOLDERS)}.
# [[handlers]]
# event = "job.finished"
# command = ["/usr/local/bin/notify-team", "{{subject}}"]
# timeout = 60.0

# An automatic reply to a message that matches every field given: `type` (the
# message's type), `from`, and `subject` (a regular expression, searched, ignoring
# case). The reply is `reply` text, or the standard output of a `command` that gets
# the message as JSON on standard input. A "request" whose subject is "ping" is
# answered with this server's status without any rule.
# [[reply_rules]]
# type = "request"
# subject = "^status( of .*)?$"
# reply = "Busy building; see shared/health_dashboard.json"
"""


def example_config() -> str:
    """The whole commented file."""
    lines = [
        "# build-watcher configuration. Looked for at --config, else "
        f"{SYSTEM_CONFIG}, else",
        f"# the checkout's {CHECKOUT_CONFIG}. BUILD_WATCHER_<SETTING> variables and "
        "flags override it.",
        "# Every setting is shown with its default; uncomment to change one.",
        "",
    ]
    for setting in fields(Config):
        if setting.name in NOT_SETTINGS:
            continue
        lines.append(f"# {NOTES[setting.name]}")
        lines.append(f"# {setting.name} = {_default_text(setting.name)}")
        lines.append("")
    return "\n".join(lines) + TABLES


def _default_text(name: str) -> str:
    setting = next(item for item in fields(Config) if item.name == name)
    if setting.default is not MISSING:
        value: Any = setting.default
    elif setting.default_factory is not MISSING:
        value = setting.default_factory()
    else:
        value = None
    return _toml(name, value)


def _toml(name: str, value: Any) -> str:
    if name == "node":
        return '"build1"'
    if name in ("state_dir", "workspace_dir"):
        return f'"/var/lib/build-watcher/{name.removesuffix("_dir")}"'
    if isinstance(value, tuple | list):
        return json.dumps(list(value))
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)
