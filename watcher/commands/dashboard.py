"""`build-watcher dashboard --html FILE`: the fleet as one static page.

The page needs nothing but itself (no script, font, stylesheet or image to
fetch), so a person can open it from disk or a web server can publish it. It is
written atomically: a web server never serves half a page. `-` prints it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from watcher.config import load_config
from watcher.errors import WatcherError

HELP = "write the fleet view as one static HTML page"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--html",
        metavar="FILE",
        required=True,
        help="where to write the page (- for stdout)",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=20,
        metavar="N",
        help="how many recent commits to replay into events (default 20)",
    )


def run(args: argparse.Namespace) -> int:
    from watcher.fleet import load_fleet
    from watcher.fleetpage import render_page
    from watcher.outbox import write_durably

    config = load_config(args.repo, args.node, args.config)
    page = render_page(load_fleet(config, events=max(0, args.events)))
    if args.html == "-":
        sys.stdout.write(page)
        return 0
    target = Path(args.html)
    if not target.parent.is_dir():
        raise WatcherError(
            f"cannot write {target}: directory {target.parent} does not exist",
            hint="create the directory first, or pass another --html path",
        )
    try:
        write_durably(target, page)
    except OSError as error:
        raise WatcherError(f"cannot write {target}: {error.strerror}") from error
    print(f"wrote {target}", file=sys.stderr)
    return 0
