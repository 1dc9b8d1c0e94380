"""`build-watcher log`: the checkout's history replayed as events, oldest first.

An audit trail people can read: who queued what, who took it, which messages went
where. With `--node ID` it shows what that server would have been told (messages
to it or to all, not from it); without, the whole fleet's view (every message).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from watcher.config import load_config
from watcher.errors import UsageError

if TYPE_CHECKING:
    from watcher.events import Event
    from watcher.history import CommitInfo, Replayed

HELP = "replay history as events"
_WIDTH = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", metavar="REV", help="start after this commit (default: the root)"
    )
    parser.add_argument(
        "--node",
        dest="log_node",
        metavar="ID",
        help="replay as this server would have seen it (default: the whole fleet)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from watcher.history import replay

    node = args.log_node or args.node
    config = load_config(args.repo, node, args.config)
    since = _checked_revision(args.since)
    steps = replay(config.repo, node, since=since)
    if args.format == "json":
        json.dump(render_json(node, steps), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        for line in render_lines(steps):
            sys.stdout.write(line + "\n")
    return 0


def _checked_revision(rev: str | None) -> str | None:
    """A revision as the user typed it, refused if git could take it for an option."""
    if rev is not None and (not rev or rev.startswith("-")):
        raise UsageError(
            f"--since {rev!r} is not a revision",
            hint="give a commit id, a branch or tag, or an expression like HEAD~10",
        )
    return rev


def render_lines(steps: Iterable[Replayed]) -> Iterable[str]:
    for step in steps:
        for event in step.events:
            yield render_line(step.commit, event)


def render_line(commit: CommitInfo, event: Event) -> str:
    when = commit.time.strftime("%Y-%m-%d %H:%M:%S")
    subject = _clean(event.subject, 40)
    kind = event.kind.value
    return f"{when}  {commit.sha[:8]}  {kind:<21}  {subject}  {summarize(event)}"


def render_json(node: str | None, steps: Iterable[Replayed]) -> dict[str, Any]:
    entries = [
        {
            "time": step.commit.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "author": step.commit.author,
            "summary": summarize(event),
            **event.to_json(),
        }
        for step in steps
        for event in step.events
    ]
    return {"node": node, "events": entries}


def summarize(event: Event) -> str:
    """One short line saying what happened, from the event's own records."""
    record = event.record or event.previous or {}
    describe = _SUMMARIES.get(event.kind.value, _describe_plain)
    return _clean(describe(event, record), _WIDTH)


def _describe_job(event: Event, record: Mapping[str, Any]) -> str:
    verb = event.kind.value.split(".")[1]
    what = ", ".join(str(record[key]) for key in ("type", "branch") if record.get(key))
    detail = f" ({what})" if what else ""
    if event.kind.value == "job.finished":
        who = f"{event.actor} finished" if event.actor else "finished"
        return f"{who} {event.subject}: {record.get('status')}{detail}"
    if event.kind.value == "job.requeued":
        was = (event.previous or {}).get("assigned_to") or "nobody"
        attempt = record.get("attempt", "?")
        return f"{event.subject} requeued for attempt {attempt} (was {was})"
    if event.kind.value == "job.cancelled":
        return f"{event.subject} cancelled{f' by {event.actor}' if event.actor else ''}"
    if event.actor is None:
        return f"{event.subject} {verb}{detail}"
    return f"{event.actor} {verb} {event.subject}{detail}"


def _describe_lock(event: Event, record: Mapping[str, Any]) -> str:
    verb = event.kind.value.split(".")[1]
    epoch = record.get("epoch")
    suffix = f" (epoch {epoch})" if epoch is not None else ""
    if event.kind.value == "lock.expired":
        return f"lease on {event.subject} held by {event.actor} expired{suffix}"
    return f"{event.actor} {verb} lock {event.subject}{suffix}"


def _describe_message(event: Event, record: Mapping[str, Any]) -> str:
    subject = record.get("subject", "")
    if event.kind.value == "message.read":
        return f"{event.actor or 'the addressee'} read {event.subject}: {subject}"
    return f"{record.get('from', '?')} -> {record.get('to', '?')}: {subject}"


def _describe_server(event: Event, record: Mapping[str, Any]) -> str:
    if event.kind.value == "server.status_changed":
        before = (event.previous or {}).get("status")
        return f"{event.subject}: {before} -> {record.get('status')}"
    words = {"server.joined": "joined", "server.stale": "went silent"}
    return f"{event.subject} {words.get(event.kind.value, 'is back')}"


def _describe_plain(event: Event, record: Mapping[str, Any]) -> str:
    problem = event.problem
    if problem is not None:
        where = f"line {problem.line}:{problem.column} " if problem.line else ""
        return f"{where}at {problem.json_path}: {problem.message}"
    return f"{event.path} changed"


_SUMMARIES = {
    **dict.fromkeys(
        ("job.queued", "job.claimed", "job.finished", "job.cancelled", "job.requeued"),
        _describe_job,
    ),
    **dict.fromkeys(("lock.acquired", "lock.released", "lock.expired"), _describe_lock),
    **dict.fromkeys(("message.received", "message.read"), _describe_message),
    **dict.fromkeys(
        ("server.joined", "server.status_changed", "server.stale", "server.recovered"),
        _describe_server,
    ),
}


def _clean(text: str, width: int) -> str:
    """One printable line: repository text may hold newlines or terminal escapes."""
    flat = "".join(char if char.isprintable() else " " for char in str(text))
    flat = " ".join(flat.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
