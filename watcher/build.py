"""Running one job: check it, fetch its source, run its command, record the result.

The command runs as the leader of its own process group with its output written
straight to a local log file, so a build that prints without end never blocks on a
pipe. It stops on its timeout or when the `cancel` event is set: SIGTERM to the
whole group, SIGKILL after `config.kill_grace`, and the group is waited for, so no
process of the build outlives it. A process that leaves the group (setsid) escapes;
only a cgroup per build would hold it.

Cancellation and timeouts act on the build command at once; during the source fetch
they act when the current git step ends (each is bounded by the time left).
"""

from __future__ import annotations

import enum
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from loguru import logger

from watcher import process
from watcher.artifacts import Artifact, collect_artifacts
from watcher.buildexit import read_status
from watcher.config import Config
from watcher.errors import WatcherError
from watcher.jobinputs import JobInputs, check_job_inputs
from watcher.leftovers import mark_running
from watcher.recipes import Recipe, recipe_for
from watcher.sourcetree import fetch_source
from watcher.timestamps import parse_timestamp

TRIMMED_LOG_BYTES = 64 * 1024
SUPERVISE_INTERVAL = 0.1


class BuildStatus(enum.Enum):
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


@dataclass(frozen=True)
class BuildResult:
    """How one run of a job ended, computed before anything is reported."""

    job_id: str
    status: BuildStatus
    reason: str
    started_at: datetime
    duration: float
    exit_code: int | None = None
    log_path: Path | None = None
    trimmed_log: str = ""
    artifacts: tuple[Artifact, ...] = ()
    source_commit: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is BuildStatus.COMPLETED


@dataclass(frozen=True)
class _Ending:
    status: BuildStatus
    reason: str
    exit_code: int | None = None
    source_commit: str | None = None


@dataclass(frozen=True)
class _Limits:
    deadline: float
    timeout: float
    grace: float
    cancel: threading.Event


def run_build(
    job: Mapping[str, Any],
    config: Config,
    build_config: Mapping[str, Any] | None,
    *,
    cancel: threading.Event | None = None,
) -> BuildResult:
    """Run `job` here to its end; never raises for a failure of the build itself."""
    started_at, clock = datetime.now(UTC), time.monotonic()
    try:
        inputs = check_job_inputs(job)
        recipe = recipe_for(inputs, config, build_config)
    except WatcherError as error:
        return _refused(job, error, started_at)
    grace, stop = config.kill_grace, cancel or threading.Event()
    limits = _Limits(clock + recipe.timeout, recipe.timeout, grace, stop)
    log_path = local_log_path(config, inputs)
    with log_path.open("wb") as log:
        ending = _run_recipe(recipe, inputs, log, limits)
    duration = time.monotonic() - clock  # a wall clock may jump meanwhile
    result = _result(inputs, recipe, ending, log_path, started_at, duration=duration)
    logger.info(
        "build of {job} finished: {status}{why}",
        job=inputs.job_id,
        status=result.status.value,
        why=f" ({result.reason})" if result.reason else "",
    )
    return result


def ended_meanwhile(
    job: Mapping[str, Any], config: Config, build_config: Mapping[str, Any] | None
) -> BuildResult | None:
    """How a build of a previous life of the daemon ended, when its keeper noted it.

    The daemon was killed while the command ran and the command ran to its end
    meanwhile; None when nothing was noted (the build never ran, or was stopped).
    """
    try:
        inputs = check_job_inputs(job)
        recipe = recipe_for(inputs, config, build_config)
    except WatcherError:
        return None
    log_path = local_log_path(config, inputs)
    status_file = exit_status_path(log_path)
    status = read_status(status_file)
    returncode = status.get("returncode") if status else None
    # A command ended by a signal was most likely stopped by a daemon (at its
    # shutdown, or at a start that found it running): give the job back instead.
    if not isinstance(returncode, int) or returncode < 0:
        return None
    ending = ending_from(status_file, returncode)
    started_at = parse_timestamp(job.get("started_at")) or datetime.now(UTC)
    # Across a restart only the wall clock spans the build; it may have jumped.
    duration = max(0.0, (datetime.now(UTC) - started_at).total_seconds())
    return _result(inputs, recipe, ending, log_path, started_at, duration=duration)


def _refused(
    job: Mapping[str, Any], error: WatcherError, started_at: datetime
) -> BuildResult:
    """Nothing ran: the job's fields or this server's recipe for it are unusable."""
    logger.bind(job=job.get("id")).warning("job refused: {}", error.message)
    note = f"[build-watcher] job refused, nothing was run: {error.message}\n"
    return BuildResult(
        str(job.get("id")),
        BuildStatus.FAILED,
        error.message,
        started_at,
        0.0,
        trimmed_log=note,
    )


def _result(
    inputs: JobInputs,
    recipe: Recipe,
    ending: _Ending,
    log_path: Path,
    started_at: datetime,
    *,
    duration: float,
) -> BuildResult:
    completed = ending.status is BuildStatus.COMPLETED
    return BuildResult(
        job_id=inputs.job_id,
        status=ending.status,
        reason=ending.reason,
        started_at=started_at,
        duration=duration,
        exit_code=ending.exit_code,
        log_path=log_path,
        trimmed_log=trim_log(log_path),
        artifacts=tuple(_artifacts(recipe)) if completed else (),
        source_commit=ending.source_commit,
    )


def local_log_path(config: Config, inputs: JobInputs) -> Path:
    """The full log of one attempt, kept on this server outside the workspace."""
    directory = config.state_path / "build-logs"
    directory.mkdir(parents=True, exist_ok=True)
    suffix = f".attempt-{inputs.attempt}" if inputs.attempt is not None else ""
    return directory / f"{inputs.job_id}{suffix}.log"


def _run_recipe(
    recipe: Recipe, inputs: JobInputs, log: IO[bytes], limits: _Limits
) -> _Ending:
    _note(log, f"job {inputs.job_id} ({inputs.job_type}) in {recipe.paths.source}")
    try:
        _prepare_workspace(recipe)
    except OSError as error:
        return _Ending(BuildStatus.FAILED, f"cannot prepare the workspace: {error}")
    source_commit = None
    if recipe.source is not None:
        fetched = _fetch(recipe, log, limits)
        if isinstance(fetched, _Ending):
            return fetched
        source_commit = fetched
    if limits.cancel.is_set():
        return _Ending(BuildStatus.CANCELLED, "cancelled before the build started")
    ending = _run_command(recipe, inputs, log, limits)
    _note(log, f"{ending.status.value}: {ending.reason}")
    return _Ending(ending.status, ending.reason, ending.exit_code, source_commit)


def _prepare_workspace(recipe: Recipe) -> None:
    """A fresh directory per attempt: nothing left from an earlier run is trusted."""
    shutil.rmtree(recipe.paths.root, ignore_errors=True)
    recipe.paths.source.mkdir(parents=True)
    recipe.paths.artifacts.mkdir()


def _fetch(recipe: Recipe, log: IO[bytes], limits: _Limits) -> str | _Ending:
    assert recipe.source is not None
    try:
        return fetch_source(recipe.source, recipe.paths.source, log, limits.deadline)
    except WatcherError as error:
        if time.monotonic() >= limits.deadline:
            return _Ending(BuildStatus.TIMED_OUT, _timed_out(limits))
        _note(log, f"fetching the source failed: {error.message}")
        return _Ending(
            BuildStatus.FAILED, f"fetching the source failed: {error.message}"
        )


def _run_command(
    recipe: Recipe, inputs: JobInputs, log: IO[bytes], limits: _Limits
) -> _Ending:
    _note(log, "$ " + " ".join(recipe.command))
    status_file = exit_status_path(Path(log.name))
    status_file.unlink(missing_ok=True)
    keeper = [sys.executable, "-I", "-m", "watcher.buildexit", str(status_file)]
    try:
        child = process.spawn_group(
            [*keeper, *recipe.command],
            cwd=recipe.paths.source,
            env=_environment(recipe, inputs),
            output=log.fileno(),
        )
    except WatcherError as error:
        return _Ending(BuildStatus.FAILED, error.message)
    marker = mark_running(recipe.paths.root, child.pid)
    stopped = _supervise(child, limits)
    survivors = process.stop_group(child, limits.grace)
    marker.unlink(missing_ok=True)
    if survivors:
        logger.bind(job=inputs.job_id, pids=survivors).error(
            "build processes survived SIGKILL"
        )
    return stopped or ending_from(status_file, child.returncode)


def exit_status_path(local_log: Path) -> Path:
    """Where the keeper notes how one attempt's command ended, beside its log."""
    return local_log.with_name(local_log.name.removesuffix(".log") + ".exit.json")


def ending_from(status_file: Path, returncode: int) -> _Ending:
    status = read_status(status_file)
    error = status.get("error") if status else None
    if isinstance(error, str):
        return _Ending(BuildStatus.FAILED, error)
    return _exit_ending(returncode)


def _supervise(child: subprocess.Popen[bytes], limits: _Limits) -> _Ending | None:
    """Wait for the command; an ending when it must be stopped, None when it exited."""
    while child.poll() is None:
        if limits.cancel.is_set():
            return _Ending(BuildStatus.CANCELLED, "cancelled while running")
        remaining = limits.deadline - time.monotonic()
        if remaining <= 0:
            return _Ending(BuildStatus.TIMED_OUT, _timed_out(limits))
        limits.cancel.wait(min(remaining, SUPERVISE_INTERVAL))
    return None


def _timed_out(limits: _Limits) -> str:
    return f"timed out after {limits.timeout:g} s"


def _exit_ending(returncode: int) -> _Ending:
    if returncode == 0:
        return _Ending(BuildStatus.COMPLETED, "exited with status 0", 0)
    if returncode < 0:
        name = signal.Signals(-returncode).name
        return _Ending(BuildStatus.FAILED, f"killed by {name}", returncode)
    return _Ending(BuildStatus.FAILED, f"exited with status {returncode}", returncode)


def _environment(recipe: Recipe, inputs: JobInputs) -> dict[str, str]:
    """The daemon's environment without git's variables, plus the job's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(recipe.env)
    env["BUILD_WATCHER_JOB_ID"] = inputs.job_id
    env["BUILD_WATCHER_JOB_TYPE"] = inputs.job_type
    env["BUILD_WATCHER_WORKSPACE"] = str(recipe.paths.source)
    return env


def _artifacts(recipe: Recipe) -> list[Artifact]:
    return collect_artifacts(recipe.paths.root, recipe.artifact_patterns)


def _note(log: IO[bytes], line: str) -> None:
    log.write(f"[build-watcher] {line}\n".encode("utf-8", "replace"))
    log.flush()


def trim_log(path: Path, limit: int = TRIMMED_LOG_BYTES) -> str:
    """The log's tail, at most `limit` bytes from a line start, with a header if cut."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(0, size - limit))
        tail = handle.read(limit)
    if len(tail) < size:
        newline = tail.find(b"\n")
        if 0 <= newline < len(tail) - 1:
            tail = tail[newline + 1 :]
    text = tail.decode("utf-8", "replace").replace("\x00", "")
    cut = size - len(tail)
    if cut == 0:
        return text
    header = f"[build-watcher] {cut} of {size} bytes cut; the full log is {path}\n"
    return header + text
