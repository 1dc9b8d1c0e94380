"""`build-watcher init`: make a checkout ready: layout, identity, hooks, config."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watcher.bootstrap import Step

HELP = "make a checkout ready: layout, identity, hooks"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--remote", metavar="URL", help="clone from, or add as origin")
    parser.add_argument("--branch", help="the shared branch (default: main)")
    parser.add_argument("--no-hooks", action="store_true", help="leave git hooks alone")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from watcher import bootstrap

    repo = Path(args.repo or os.getcwd()).resolve()
    steps = [bootstrap.prepare_checkout(repo, args.remote)]
    config = bootstrap.resolve_config(repo, args.node, args.config, args.branch)
    steps.append(bootstrap.write_identity(config))
    steps.append(bootstrap.create_layout(config))
    steps.append(bootstrap.check_out_branch(config))
    if not args.no_hooks:
        steps.extend(bootstrap.install_git_hooks(repo))
    steps.append(bootstrap.write_example_config(repo, args.branch))
    steps.append(bootstrap.Step("next", "build-watcher watch"))
    _render(steps, args.format)
    return 0


def _render(steps: list[Step], output: str) -> None:
    if output == "json":
        document = [{"step": step.name, "done": step.done} for step in steps]
        print(json.dumps(document, indent=2))
        return
    for step in steps:
        print(f"{step.name:<13} {step.done}")
