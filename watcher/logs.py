"""Log sinks, configured only by entry points.

Readable lines on a terminal; one JSON object per line with `--log-format json`
or when standard error is the journal.
"""

from __future__ import annotations

import argparse
import os
import sys

from loguru import logger

TEXT_FORMAT = (
    "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[node]}</cyan> {message}"
)


def configure_logging(args: argparse.Namespace) -> None:
    level = "DEBUG" if args.verbose else "WARNING" if args.quiet else "INFO"
    chosen = args.log_format or os.environ.get("BUILD_WATCHER_LOG_FORMAT", "auto")
    configure_sink(level, chosen, getattr(args, "node", None))


def configure_sink(level: str, log_format: str, node: str | None = None) -> None:
    as_json = log_format == "json" or (
        log_format == "auto" and "JOURNAL_STREAM" in os.environ
    )
    logger.remove()
    logger.configure(extra={"node": node or "-"})
    if as_json:
        logger.add(sys.stderr, level=level, serialize=True)
    else:
        logger.add(
            sys.stderr, level=level, format=TEXT_FORMAT, colorize=sys.stderr.isatty()
        )
