"""Build results kept on this server until the shared repository has them.

The moment a build ends, its finishing write (`FinishBuild`) is noted in
`<state dir>/finishes/<job id>.attempt-<n>.json`, written atomically. The note is
removed once the finish landed, or was moot (the job moved on: the write is fenced
by the attempt, so it can never report over a new holder). A finish the remote
refused, or one a kill -9 interrupted, is therefore still known after a restart
and is reported instead of the job being given back and built again.
"""

from __future__ import annotations

import json
from pathlib import Path

from loguru import logger

from watcher.buildrecords import FinishBuild
from watcher.config import Config
from watcher.draft import rebuild_operation
from watcher.errors import WatcherError
from watcher.outbox import write_durably

DIRECTORY = "finishes"


def note_path(config: Config, finish: FinishBuild) -> Path:
    name = f"{finish.job_id}.attempt-{finish.attempt}.json"
    return config.state_path / DIRECTORY / name


def record_finish(config: Config, finish: FinishBuild) -> None:
    """Note `finish` durably before anything tries to write it."""
    path = note_path(config, finish)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_durably(path, json.dumps(finish.to_json(), sort_keys=True) + "\n")


def forget_finish(config: Config, finish: FinishBuild) -> None:
    note_path(config, finish).unlink(missing_ok=True)


def unreported_finishes(config: Config) -> list[FinishBuild]:
    """The finishes noted and not yet settled, oldest job first.

    A note that cannot be read is left in place and reported at WARNING: it is the
    only record of how that build ended.
    """
    finishes = []
    for path in sorted((config.state_path / DIRECTORY).glob("*.json")):
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            operation = rebuild_operation(FinishBuild.name, __name__, payload)
        except (OSError, ValueError, TypeError, WatcherError) as error:
            logger.bind(note=str(path)).warning(
                "unreadable build result note, left in place: {error}", error=error
            )
            continue
        if isinstance(operation, FinishBuild):
            finishes.append(operation)
    return finishes
