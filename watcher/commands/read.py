"""`build-watcher read`: mark messages as read by this server, in one transaction."""

from __future__ import annotations

import argparse
import json

from watcher.config import load_config

HELP = "mark messages as read by this server"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "message_ids", nargs="+", metavar="MESSAGE_ID", help="a message to mark read"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from watcher.commands.send import raise_if_failed
    from watcher.mailbox import MarkRead, ReadResult
    from watcher.transaction import transact

    config = load_config(args.repo, args.node, args.config)
    config.require_node()
    ids = tuple(dict.fromkeys(args.message_ids))
    outcome = transact(config, MarkRead(ids))
    raise_if_failed(outcome, "the messages were not marked read")
    result = outcome.result or ReadResult((), ())
    if args.format == "json":
        fields = {"marked": list(result.marked), "already": list(result.already)}
        print(json.dumps({**fields, **outcome.to_json()}, indent=2))
    elif outcome.result is None:
        print(f"{outcome.status.value}: {outcome.reason}")
    else:
        for label, shown in (("read", result.marked), ("already read", result.already)):
            if shown:
                print(f"{label}: {' '.join(shown)}")
    return 0
