"""`build-watcher demo`: run a small fleet on this machine, end to end.

Needs only Python and git. In a new directory: a bare remote, the bundled sample
project as the job source, three server checkouts and one for the operator; a
daemon for each server; jobs, a broadcast and a ping; one server killed while it
builds, noticed stale and its job taken over. Prints the timeline as it goes and
the fleet at the end, checks every promise, stops the daemons and removes the
directory (unless --keep). Exit status 1 when a promise was not kept.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from watcher.errors import UsageError

if TYPE_CHECKING:
    from watcher.demo import DemoReport

HELP = "run a small fleet locally, end to end"
DESCRIPTION = __doc__.split("\n\n", 1)[1] if __doc__ else HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="build the fleet in DIR (new or empty) and keep it afterwards, "
        "with the daemons' logs",
    )


def run(args: argparse.Namespace) -> int:
    from watcher.demo import run_demo
    from watcher.demofleet import FleetPaths, remove_stragglers

    root = _directory(args.keep)
    say(f"build-watcher demo in {root}")
    say("timeline: time, commit (or the server that noticed), event, subject, what")
    try:
        report = run_demo(root, say)
    finally:
        remove_stragglers(FleetPaths(root))
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    say(render_report(report, root if args.keep else None))
    return 0 if report.ok else 1


def say(line: str) -> None:
    print(line, flush=True)


def _directory(keep: str | None) -> Path:
    if keep is None:
        return Path(tempfile.mkdtemp(prefix="build-watcher-demo-"))
    root = Path(keep).expanduser().resolve()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise UsageError(
            f"--keep {keep}: {root} exists and is not an empty directory",
            hint="name a new directory, or an empty one",
        )
    root.mkdir(parents=True, exist_ok=True)
    return root


def render_report(report: DemoReport, kept: Path | None) -> str:
    from watcher.commands.status import render_text, wants_colour

    lines = [""]
    if report.fleet is not None:
        lines += [render_text(report.fleet, colour=wants_colour("auto")), ""]
    for check in report.checks:
        lines.append(f"[{'ok' if check.ok else 'FAILED'}] {check.promise}")
        lines.append(f"       {check.detail}")
    stopped = ", ".join(
        f"{node} {'killed' if code is None else f'exit {code}'}"
        for node, code in sorted(report.stopped.items())
    )
    lines.append(f"daemons stopped: {stopped}")
    verdict = "every promise kept" if report.ok else "SOME PROMISES NOT KEPT"
    lines.append(f"demo finished in {report.seconds:.1f} s: {verdict}")
    if kept is not None:
        lines.append(
            f"kept in {kept}: the daemons' logs are in {kept / 'logs'}; the whole "
            f"history: build-watcher --repo {kept / 'remote.git'} log"
        )
    return "\n".join(lines)
