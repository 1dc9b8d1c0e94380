"""`build-watcher jobs`: the job queue with state, holder, attempt and age.

Read from git objects at the remote branch as last fetched (HEAD when there is
none), so it works offline and on a legacy repository.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from watcher.config import load_config

HELP = "list jobs"
STATUS_CHOICES = ("queued", "running", "completed", "failed", "cancelled")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", choices=STATUS_CHOICES, help="only this status")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from watcher.jobrecords import job_age, job_attempt, list_jobs
    from watcher.transaction import read_shared_snapshot

    config = load_config(args.repo, args.node, args.config)
    snapshot = read_shared_snapshot(config)
    rows = [
        {**job, "attempt": job_attempt(job), "age_seconds": job_age(job)}
        for job in list_jobs(snapshot, args.status)
    ]
    if args.format == "json":
        print(json.dumps({"commit": snapshot.commit, "jobs": rows}, indent=2))
    else:
        print(render_text(rows), end="")
    return 0


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
