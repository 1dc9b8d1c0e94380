"""`build-watcher jobs`: the job queue with state, holder, attempt and age.

Read from git objects at the remote branch as last fetched (HEAD when there is
none), so it works offline and on a legacy repository.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from watcher.config import load_config

if TYPE_CHECKING:
    from watcher.problems import Problem

HELP = "list jobs"
STATUS_CHOICES = ("queued", "running", "completed", "failed", "cancelled")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", choices=STATUS_CHOICES, help="only this status")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from watcher.jobrecords import job_age, job_attempt, list_jobs
    from watcher.layout import JOBS_PATH
    from watcher.transaction import read_shared_snapshot

    config = load_config(args.repo, args.node, args.config)
    snapshot = read_shared_snapshot(config)
    rows = [
        {**job, "attempt": job_attempt(job), "age_seconds": job_age(job)}
        for job in list_jobs(snapshot, args.status)
    ]
    broken = [p for p in snapshot.problems.get(JOBS_PATH, ()) if p.is_error]
    if args.format == "json":
        invalid = [problem.to_json() for problem in broken]
        document = {"commit": snapshot.commit, "jobs": rows, "invalid": invalid}
        print(json.dumps(document, indent=2))
    else:
        warn_broken(broken)
        print(render_text(rows), end="")
    return 1 if broken else 0


def warn_broken(problems: list[Problem]) -> None:
    """The queue cannot be listed from a broken file: say so, never show it empty."""
    if not problems:
        return
    first = problems[0]
    print(
        f"error: {first.describe()}\n"
        f"  hint: the shared branch holds a broken {first.path}, so no job of it "
        f"is listed; fix it and commit (`build-watcher validate {first.path}`)",
        file=sys.stderr,
    )


def render_text(rows: list[dict[str, Any]]) -> str:
    header = ("ID", "TYPE", "STATUS", "PRI", "HOLDER", "TRY", "AGE", "BRANCH")
    table = [header, *(_row(job) for job in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    lines.append(f"{len(rows)} job(s)")
    return "\n".join(lines) + "\n"


def _row(job: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(
        _printable(str(cell))
        for cell in (
            job.get("id", "?"),
            job.get("type", "?"),
            job.get("status", "?"),
            job.get("priority", "-"),
            job.get("assigned_to") or "-",
            job.get("attempt", 1),
            format_age(job.get("age_seconds")),
            job.get("branch") or "-",
        )
    )


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{max(0, int(seconds))}s"


def _printable(text: str) -> str:
    """Repository text with control characters shown, never sent to the terminal."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
