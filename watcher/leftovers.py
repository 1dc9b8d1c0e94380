"""Builds left running by a daemon that died mid-build (kill -9, a crash, power).

Each build notes its process group in `<job dir>/build.pid` while it runs; a build
that ends normally removes the note. A daemon starting finds the notes left over
and stops those groups (SIGTERM, then SIGKILL), so a restart leaves no build of a
previous life running beside the new ones.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import psutil
from loguru import logger

from watcher import process
from watcher.config import Config

RUNNING_MARKER = "build.pid"


def mark_running(job_root: Path, group: int) -> Path:
    """Note a build's process group in its job directory; the marker's path."""
    marker = job_root / RUNNING_MARKER
    try:
        started = psutil.Process(group).create_time()
    except psutil.NoSuchProcess:
        started = 0.0
    temporary = marker.with_suffix(".tmp")
    with temporary.open("w") as handle:
        json.dump({"pid": group, "started": started}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, marker)
    return marker


def stop_leftover_builds(config: Config) -> list[str]:
    """Stop builds a previous life of this daemon left running; their job ids.

    A group whose leader still runs is ours only if the leader started when the
    marker says (a pid may be reused); a group whose leader is gone but whose
    members run is ours, since Linux never reuses a pid still naming a group.
    """
    stopped = []
    for marker in sorted(config.workspace_path.glob(f"*/{RUNNING_MARKER}")):
        group = _leftover_group(marker)
        # A group of zombies alone (nobody reaped the ended build) is not running.
        if group is not None and process.live_group_members(group):
            survivors = process.stop_detached_group(group, config.kill_grace)
            logger.bind(job=marker.parent.name, survivors=survivors).warning(
                "stopped a build left running by a previous run of the daemon"
            )
            stopped.append(marker.parent.name)
        marker.unlink(missing_ok=True)
    return stopped


def _leftover_group(marker: Path) -> int | None:
    try:
        noted = json.loads(marker.read_text())
        group, started = int(noted["pid"]), float(noted["started"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        leader_started = psutil.Process(group).create_time()
    except psutil.NoSuchProcess:
        return group if process.live_group_members(group) else None
    return group if abs(leader_started - started) < 0.01 else None
