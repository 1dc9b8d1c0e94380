"""`build-watcher status`: servers (alive, stale, unknown), jobs, locks, my mail.

Read from git objects as last fetched (the main branch and the heartbeat
branches), never from the working tree. Liveness comes from the daemon's saved
view when it is fresh, else from heartbeat timestamps with a caveat printed (see
`watcher.judgement`). Colour only on a terminal, and never with NO_COLOR set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from watcher.config import load_config

if TYPE_CHECKING:
    from watcher.fleet import FleetView

HELP = "show the fleet: servers, jobs, locks, unread messages"
_COLOURS = {
    "alive": "32",
    "healthy": "32",
    "stale": "31",
    "down": "31",
    "degraded": "33",
    "unknown": "90",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the text output (default: only on a terminal)",
    )


def run(args: argparse.Namespace) -> int:
    from watcher.fleet import load_fleet

    config = load_config(args.repo, args.node, args.config)
    view = load_fleet(config)
    if args.format == "json":
        print(json.dumps(view.to_json(), indent=2, ensure_ascii=False))
    else:
        print(render_text(view, colour=wants_colour(args.color)), end="")
    return 0


def wants_colour(choice: str) -> bool:
    if choice != "auto":
        return choice == "always"
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def render_text(view: FleetView, *, colour: bool = False) -> str:
    """The fleet as a few aligned tables."""
    from watcher.dashboard import overall_status

    paint = _painter(colour)
    overall = overall_status(view.servers)
    observer = view.observer or "(no server id)"
    lines = [
        f"Fleet {paint(overall, overall)} as seen by {observer} at {_when(view)}"
        f" (liveness from {view.judgement.source})",
    ]
    if view.judgement.caveat:
        lines.append(f"note: {view.judgement.caveat}")
    lines += ["", *_servers(view, paint), "", *_jobs(view), "", *_locks(view)]
    lines += ["", *_unread(view)]
    if view.problems:
        lines += [
            "",
            f"{len(view.problems)} invalid document(s): run `build-watcher validate`",
        ]
    return "\n".join(lines) + "\n"


def _servers(view: FleetView, paint: _Paint) -> list[str]:
    from watcher.fleetpage import describe_age

    rows = [
        (
            row.server,
            row.liveness.value,
            _since(view, row.since),
            describe_age(row.age_seconds),
            row.status or "-",
            row.current_job or "-",
            "-" if row.offset_seconds is None else f"{row.offset_seconds:+.0f}s",
        )
        for row in view.servers
    ]
    heads = ("SERVER", "LIVENESS", "SINCE", "LAST SEEN", "STATUS", "JOB", "OFFSET")
    return _table(heads, rows, paint, coloured_column=1) or ["no servers yet"]


def _jobs(view: FleetView) -> list[str]:
    counts = ", ".join(
        f"{len(rows)} {state}" for state, rows in sorted(view.jobs.items())
    )
    shown = [*view.jobs.get("running", []), *view.jobs.get("queued", [])]
    rows = [
        (j.id, j.type or "-", j.status, str(j.priority or "-"), j.assigned_to or "-")
        for j in shown
    ]
    table = _table(("JOB", "TYPE", "STATE", "PRI", "HOLDER"), rows, _plain)
    return [f"Jobs: {counts or 'none'}", *table]


def _locks(view: FleetView) -> list[str]:
    rows = [
        (lock.name, lock.holder or "-", lock.expires_at or "-") for lock in view.locks
    ]
    table = _table(("LOCK", "HOLDER", "EXPIRES"), rows, _plain)
    return [f"Locks: {len(rows)} held", *table]


def _unread(view: FleetView) -> list[str]:
    if view.observer is None:
        return ["Unread messages: no server id, so no inbox (pass --node ID)"]
    rows = [(m.id, m.sender, m.timestamp or "-", m.subject) for m in view.unread]
    table = _table(("MESSAGE", "FROM", "WHEN", "SUBJECT"), rows, _plain)
    return [f"Unread messages for {view.observer}: {len(rows)}", *table]


class _Paint:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, word: str) -> str:
        code = _COLOURS.get(word)
        if not self.enabled or code is None:
            return text
        return f"\033[{code}m{text}\033[0m"


def _painter(enabled: bool) -> _Paint:
    return _Paint(enabled)


_plain = _Paint(False)


def _table(
    heads: tuple[str, ...],
    rows: Sequence[tuple[str, ...]],
    paint: _Paint,
    coloured_column: int | None = None,
) -> list[str]:
    """Aligned columns; padding is computed before colour so it stays aligned."""
    if not rows:
        return []
    cleaned = [tuple(_printable(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in [heads, *cleaned]) for i in range(len(heads))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip()]
    for row in cleaned:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        if coloured_column is not None:
            word = row[coloured_column]
            cells[coloured_column] = paint(cells[coloured_column], word)
        lines.append("  ".join(cells).rstrip())
    return lines


def _since(view: FleetView, moment: object) -> str:
    from datetime import datetime

    from watcher.fleetpage import describe_since

    return describe_since(
        moment if isinstance(moment, datetime) else None, view.generated_at
    )


def _when(view: FleetView) -> str:
    return view.generated_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _printable(text: str) -> str:
    """Repository text with control characters shown, never sent to the terminal."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
