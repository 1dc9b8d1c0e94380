"""`build-watcher hook NAME [ARG ...]`: what the installed git hooks run.

pre-commit judges what the commit changes: records it adds or alters must be
strict, records it leaves as they were are held to legacy. The post-* hooks only
wake this checkout's daemon, and return at once, quietly, when none runs.

This is the path of every commit a person makes, so it imports only what it
needs: plain `git` through `run_git`, and jsonschema only when a coordination
file is staged. Never GitPython, loguru or watchdog.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from watcher.errors import EXIT_FAILURE, EXIT_OK, WatcherError

HELP = "run a git hook (called by the installed hooks)"
HOOK_NAMES = ("pre-commit", "post-merge", "post-checkout", "post-rewrite")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=HOOK_NAMES, help="the hook git is running")
    parser.add_argument("hook_args", nargs=argparse.REMAINDER, help="git's arguments")


def run(args: argparse.Namespace) -> int:
    if args.name == "pre-commit":
        return _pre_commit(args)
    _wake_daemon(args)
    return EXIT_OK


def _pre_commit(args: argparse.Namespace) -> int:
    from watcher.inspection import check_staged
    from watcher.report import render_text

    # git runs hooks at the top of the working tree.
    repo = Path(args.repo).resolve() if args.repo else Path(os.getcwd())
    checked = check_staged(repo, None)
    invalid = [file for file in checked if not file.is_valid]
    if not invalid:
        return EXIT_OK
    files = "file is" if len(invalid) == 1 else "files are"
    counted = f"{len(invalid)} of {len(checked)} staged coordination {files} invalid"
    print(f"build-watcher: commit refused: {counted}", file=sys.stderr)
    print(render_text(invalid, quiet=True), file=sys.stderr)
    print(
        "Records this commit adds or changes must be in the strict form; records it "
        "leaves as they were are only held to legacy.\n"
        "Fix the files, `git add` them and commit again; once they are added, "
        "`build-watcher validate --staged` checks them without committing.",
        file=sys.stderr,
    )
    return EXIT_FAILURE


def _wake_daemon(args: argparse.Namespace) -> None:
    from watcher.config import load_config
    from watcher.wake import notify_daemon

    try:
        config = load_config(args.repo, args.node, args.config)
    except WatcherError:
        # A post-* hook cannot undo the merge or checkout it follows; a broken
        # configuration is reported by the commands that need it, not here.
        return
    notify_daemon(config.state_path, args.name)
