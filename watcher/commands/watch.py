"""`build-watcher watch`: run the daemon in the foreground (systemd runs it so)."""

from __future__ import annotations

import argparse

from watcher.config import Config, load_config
from watcher.errors import UsageError

HELP = "run the daemon in the foreground"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--poll-interval",
        type=float,
        metavar="SECONDS",
        help="fetch the remote this often (default: the configuration's, 10 s)",
    )


def run(args: argparse.Namespace) -> int:
    from watcher.daemon import Daemon
    from watcher.gitrepo import toplevel

    config = _load(args)
    config.require_node()
    top = toplevel(config.repo)
    if top.resolve() != config.repo:
        raise UsageError(
            f"{config.repo} is inside the checkout {top}, not its top",
            hint=f"run the daemon with --repo {top} (or `repo` in the configuration)",
        )
    _configure_logs(args, config)
    daemon = Daemon(config, load_config=lambda: _load(args))
    return daemon.run()


def _load(args: argparse.Namespace) -> Config:
    from dataclasses import replace

    config = load_config(args.repo, args.node, args.config)
    if args.poll_interval is not None:
        if args.poll_interval <= 0:
            raise UsageError(
                f"--poll-interval must be greater than 0, found {args.poll_interval}"
            )
        config = replace(config, poll_interval=args.poll_interval)
    return config


def _configure_logs(args: argparse.Namespace, config: Config) -> None:
    """Again, now that the server id and the configured format and level are known."""
    from watcher.logs import configure_sink

    level = "DEBUG" if args.verbose else "WARNING" if args.quiet else config.log_level
    configure_sink(level, args.log_format or config.log_format, config.node)
