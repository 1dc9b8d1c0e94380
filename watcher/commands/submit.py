"""`build-watcher submit`: queue a job in one transaction and print its id."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from watcher.config import Config, load_config

HELP = "queue a job"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", required=True, help="job type, such as build")
    parser.add_argument("--branch", required=True, help="branch of the source to build")
    parser.add_argument("--commit", help="commit of the source (7 to 40 hex digits)")
    parser.add_argument(
        "--priority", type=int, default=5, help="1 is the most urgent (default 5)"
    )
    parser.add_argument("--description", default="", help="one line for people")
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        dest="labels",
        help="a label the server must have (repeatable)",
    )
    parser.add_argument("--timeout", type=float, help="build timeout in seconds")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from watcher.joblist import SubmitJob
    from watcher.transaction import OutcomeStatus, transact

    config = load_config(args.repo, args.node, args.config)
    config.require_node()
    request = SubmitJob(
        type=args.type,
        branch=args.branch,
        commit=args.commit,
        priority=args.priority,
        description=args.description,
        labels=tuple(args.labels),
        timeout=args.timeout,
    )
    outcome = transact(config, request)
    if args.format == "json":
        print(json.dumps({"job_id": request.job_id, **outcome.to_json()}, indent=2))
    elif outcome.status is OutcomeStatus.FAILED:
        print(f"not submitted: {outcome.reason}", file=sys.stderr)
    else:
        # Only the id on standard output, so that `job=$(build-watcher submit ...)`
        # holds the id whether or not the remote was reachable.
        print(request.job_id)
        if outcome.status is OutcomeStatus.QUEUED:
            print(
                f"queued: {outcome.reason}; "
                "it is submitted when the remote is reachable again",
                file=sys.stderr,
            )
    if outcome.status is not OutcomeStatus.FAILED:
        job = {"type": request.type, "labels": list(request.labels)}
        warn_if_nobody_runs(config, outcome.commit, job)
    return outcome.exit_code


def warn_if_nobody_runs(
    config: Config, commit: str | None, job: dict[str, Any]
) -> None:
    """A job no server says it can run waits forever: say so now, not never."""
    from watcher.gitrepo import resolve_commit
    from watcher.jobrecords import is_runnable_by
    from watcher.layout import server_ids, status_path
    from watcher.transaction import snapshot_at, tracking_ref

    # The transaction's own tip, read through its cache: no second parse.
    tip = commit or resolve_commit(config.repo, tracking_ref(config))
    snapshot = snapshot_at(config, tip)
    statuses = [snapshot.get(status_path(s)) for s in server_ids(snapshot.paths)]
    offers = [offer for offer in map(_offer, statuses) if offer is not None]
    if not offers or any(
        is_runnable_by(job, offer.get("job_types") or [], offer.get("labels") or [])
        for offer in offers
    ):
        return  # no server has said what it runs yet, or one can run it
    labels = job.get("labels") or []
    wanted = f"job type {job.get('type')!r}" + (
        f" with labels {labels}" if labels else ""
    )
    print(
        f"warning: no server lists {wanted} in its capabilities; the job waits "
        "until one does (`build-watcher status --format json` shows what each "
        "server runs)",
        file=sys.stderr,
    )


def _offer(status: Any) -> dict[str, Any] | None:
    """What a server's status says it can run, when it says so."""
    offer = status.get("capabilities") if isinstance(status, dict) else None
    return offer if isinstance(offer, dict) and "job_types" in offer else None
