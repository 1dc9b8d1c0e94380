"""`build-watcher cancel JOB_ID`: end a queued job, or ask a running one's holder
to stop it, in one transaction."""

from __future__ import annotations

import argparse
import json
import sys

from watcher.config import load_config
from watcher.errors import UsageError

HELP = "cancel a job"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", metavar="JOB_ID", help="the job to cancel")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from watcher.jobinputs import is_plain_name
    from watcher.joblist import CancelJob
    from watcher.transaction import OutcomeStatus, transact

    if not is_plain_name(args.job_id):
        raise UsageError(
            f"{args.job_id!r} is not a job id",
            hint="job ids look like job_01M8ZNHF95610JHGB51FMGM26R; "
            "`build-watcher jobs` lists them",
        )
    config = load_config(args.repo, args.node, args.config)
    config.require_node()
    outcome = transact(config, CancelJob(args.job_id))
    if args.format == "json":
        print(json.dumps({"job_id": args.job_id, **outcome.to_json()}, indent=2))
    elif outcome.status is OutcomeStatus.DONE:
        print(outcome.summary)
    elif outcome.status is OutcomeStatus.QUEUED:
        print(f"cancel {args.job_id} waits in the offline queue: {outcome.reason}")
    else:
        print(f"nothing cancelled: {outcome.reason}", file=sys.stderr)
    return outcome.exit_code
