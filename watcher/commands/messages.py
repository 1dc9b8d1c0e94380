"""`build-watcher messages archive`: move old, fully read messages to monthly files.

A message moves when its time is older than `--older-than` days and every
recipient has read it (for a broadcast: every server in the repository but the
sender). It goes to `coordination/archive/messages-YYYY-MM.json` by its own month,
in one transaction; `inbox --all` still lists it.
"""

from __future__ import annotations

import argparse
import json

from watcher.config import load_config
from watcher.errors import UsageError

HELP = "maintain the message store (archive)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    archive = actions.add_parser(
        "archive",
        help="archive old messages read by all",
        description=(
            "Move messages older than --older-than days that every recipient has "
            "read to coordination/archive/messages-YYYY-MM.json, in one "
            "transaction; `inbox --all` still lists them."
        ),
    )
    archive.add_argument(
        "--older-than", type=float, required=True, metavar="DAYS", help="age in days"
    )
    archive.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people (the default) or json for scripts",
    )


def run(args: argparse.Namespace) -> int:
    from watcher.commands.send import raise_if_failed
    from watcher.mailbox import ArchiveMessages
    from watcher.transaction import OutcomeStatus, transact

    if args.older_than < 0:
        raise UsageError(
            f"--older-than must be 0 or more days, found {args.older_than}"
        )
    config = load_config(args.repo, args.node, args.config)
    config.require_node()
    outcome = transact(config, ArchiveMessages(args.older_than))
    raise_if_failed(outcome, "the messages were not archived")
    moved: dict[str, int] = outcome.result or {}
    if args.format == "json":
        print(json.dumps({"archived": moved, **outcome.to_json()}, indent=2))
    elif moved:
        print(f"archived {sum(moved.values())} messages")
        for path, count in moved.items():
            print(f"  {path}: {count}")
    elif outcome.status is OutcomeStatus.QUEUED:
        print(f"queued: {outcome.reason}")
    else:
        print(f"nothing archived: {outcome.reason}")
    return 0
