"""`build-watcher hooks install | uninstall`: the git hooks and the merge driver."""

from __future__ import annotations

import argparse
import json

HELP = "install or uninstall the git hooks and merge driver"
DESCRIPTION = """\
install: put the pre-commit, post-merge, post-checkout and post-rewrite hooks in
this checkout's hooks directory (`git rev-parse --git-path hooks`, which follows
core.hooksPath), and register the merge driver that merges coordination files by
record id. A hook already there is kept as NAME.local and runs first. Running it
again changes nothing.

uninstall: remove them and put back any hook they had chained.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "action", choices=("install", "uninstall"), help="what to do (see above)"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from watcher import githooks, mergedriver
    from watcher.gitrepo import starting_directory, toplevel

    repo = toplevel(starting_directory(args.repo))
    if args.action == "install":
        changes = githooks.install_hooks(repo)
        mergedriver.install_driver(repo)
        driver = "registered"
    else:
        changes = githooks.uninstall_hooks(repo)
        mergedriver.uninstall_driver(repo)
        driver = "removed"
    if args.format == "json":
        document = {"hooks": [c.to_json() for c in changes], "merge_driver": driver}
        print(json.dumps(document, indent=2))
        return 0
    for change in changes:
        print(f"{change.name:<14} {change.action.value}  ({change.path})")
    print(f"{'merge driver':<14} {driver} for the coordination files")
    return 0
