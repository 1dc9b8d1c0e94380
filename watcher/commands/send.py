"""`build-watcher send`: append one message, in one transaction, and print its id.

The body comes from `--body`, `--body-file` (`-` for standard input) or, when
neither is given and standard input is not a terminal, standard input. Subject and
body are data: they are stored as given and never run or put into a command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from watcher.config import load_config
from watcher.errors import UsageError, WatcherError
from watcher.messages import MESSAGE_TYPES, PRIORITIES

if TYPE_CHECKING:
    from watcher.transaction import Outcome

HELP = "send a message to a server or to all"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", required=True, metavar="ID|all", help="recipient")
    parser.add_argument("--subject", required=True, metavar="TEXT", help="one line")
    body = parser.add_mutually_exclusive_group()
    body.add_argument("--body", metavar="TEXT", help="default: standard input")
    body.add_argument("--body-file", metavar="FILE", help="read the body from FILE")
    parser.add_argument(
        "--type",
        choices=MESSAGE_TYPES,
        default="info",
        help="default info; a request with the subject ping is answered automatically",
    )
    parser.add_argument(
        "--priority", choices=PRIORITIES, default="normal", help="default normal"
    )
    parser.add_argument(
        "--reply-to", metavar="MESSAGE_ID", help="the message this one answers"
    )
    parser.add_argument(
        "--allow-secret",
        action="store_true",
        help="send even if the text looks like a credential",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from watcher.mailbox import SendMessage
    from watcher.transaction import transact

    config = load_config(args.repo, args.node, args.config)
    config.require_node()
    operation = SendMessage(
        to=args.to,
        subject=args.subject,
        body=read_body(args),
        type=args.type,
        reply_to=args.reply_to,
        priority=args.priority,
        allow_secret=args.allow_secret,
    )
    outcome = transact(config, operation)
    raise_if_failed(outcome, "the message was not sent")
    report(args.format, operation.message_id, outcome)
    return 0


def read_body(args: argparse.Namespace) -> str:
    if args.body is not None:
        return str(args.body)
    if args.body_file == "-" or (args.body_file is None and not sys.stdin.isatty()):
        return sys.stdin.read()
    if args.body_file is None:
        return ""
    try:
        return Path(args.body_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(
            f"cannot read the body from {args.body_file}: {error}",
            hint="pass a readable UTF-8 text file, or the body with --body",
        ) from error


def raise_if_failed(outcome: Outcome, what: str) -> None:
    """A failed transaction is the command's failure (exit 1), with the reason."""
    from watcher.transaction import OutcomeStatus

    if outcome.status is OutcomeStatus.FAILED:
        # A reason that carries its own hint (a broken document at the tip) says
        # better what to do than trying again.
        reason, _, hint = outcome.reason.partition("\n  hint: ")
        raise WatcherError(
            f"{what}: {reason}",
            hint=hint or "run it again; `build-watcher -v ...` shows each step",
        )


def report(output_format: str, message_id: str, outcome: Outcome) -> None:
    from watcher.transaction import OutcomeStatus

    if output_format == "json":
        print(json.dumps({"id": message_id, **outcome.to_json()}, indent=2))
        return
    print(message_id)
    if outcome.status is OutcomeStatus.QUEUED:
        print(
            f"queued: {outcome.reason}; it is sent when the remote is reachable again",
            file=sys.stderr,
        )
