"""`build-watcher locks [acquire NAME --ttl SECONDS | release NAME]`.

Without an action, lists the locks at the remote branch as last fetched, with how
long this host has watched each held record unchanged (the takeover rule in
`watcher.leases`); listing extends that watch. `acquire` takes a free lock, renews
our own, or takes over one whose record this host has watched unchanged for its
lease time plus the margin, and otherwise refuses saying how long is left.
"""

from __future__ import annotations

import argparse
import json
from shlex import quote
from typing import Any

from watcher.config import Config, load_config
from watcher.errors import UsageError

HELP = "list, acquire or release named leases"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action", nargs="?", choices=("acquire", "release"), help="what to do"
    )
    parser.add_argument("lock", nargs="?", metavar="NAME", help="the lock's name")
    parser.add_argument(
        "--ttl",
        type=float,
        metavar="SECONDS",
        help="required with acquire: how long the lease lasts, in seconds",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.repo, args.node, args.config)
    if args.action is None:
        if args.lock is not None or args.ttl is not None:
            raise UsageError("give an action: `locks acquire NAME --ttl SECONDS`")
        return list_locks(config, args.format)
    if args.lock is None:
        raise UsageError(f"`locks {args.action}` needs the lock's NAME")
    _check_ttl(args)
    return change_lock(config, args)


def _check_ttl(args: argparse.Namespace) -> None:
    if args.action == "acquire" and args.ttl is None:
        raise UsageError(
            "`locks acquire` needs --ttl SECONDS: how long the lease lasts",
            hint="for example "
            f"`build-watcher locks acquire {quote(args.lock)} --ttl 600`",
        )
    if args.action != "acquire" and args.ttl is not None:
        raise UsageError(
            f"--ttl is only for `locks acquire`, not `locks {args.action}`"
        )


def change_lock(config: Config, args: argparse.Namespace) -> int:
    from watcher.leases import AcquireLock, ReleaseLock
    from watcher.transaction import Operation, OutcomeStatus, transact

    config.require_node()
    operation: Operation
    if args.action == "acquire":
        state = str(config.state_path)
        operation = AcquireLock(args.lock, args.ttl, config.lease_margin, state)
    else:
        operation = ReleaseLock(args.lock)
    outcome = transact(config, operation)
    if args.format == "json":
        print(json.dumps({"lock": args.lock, **outcome.to_json()}, indent=2))
    elif outcome.status is OutcomeStatus.DONE:
        print(outcome.summary)
    elif outcome.status is OutcomeStatus.QUEUED:
        print(f"{args.action} {args.lock} waits in the offline queue: {outcome.reason}")
    else:
        print(f"refused: {outcome.reason}")
    return outcome.exit_code


def list_locks(config: Config, output: str) -> int:
    from watcher.leases import Observations, locks_of, observe_locks
    from watcher.transaction import read_shared_snapshot

    snapshot = read_shared_snapshot(config)
    observe_locks(config.state_path, snapshot)
    observations = Observations(config.state_path)
    rows = []
    for name, record in sorted(locks_of(snapshot).items()):
        watched = None
        if record.get("locked_by"):
            watched = observations.seen_unchanged_for(name, record)
        rows.append({"name": name, **record, "watched_seconds": watched})
    if output == "json":
        print(json.dumps({"commit": snapshot.commit, "locks": rows}, indent=2))
    else:
        print(render_text(rows), end="")
    return 0


def render_text(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        holder = row.get("locked_by")
        if holder:
            lines.append(
                f"{row['name']}: held by {holder} since {row.get('locked_at')} until "
                f"{row.get('expires_at')}, epoch {row.get('epoch', 0)}, "
                f"seen unchanged here for {row['watched_seconds']:.0f} s"
            )
        else:
            lines.append(f"{row['name']}: free, epoch {row.get('epoch', 0)}")
    lines.append(f"{len(rows)} lock(s)")
    return "".join(_printable(line) + "\n" for line in lines)


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
