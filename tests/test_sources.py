"""The filesystem source against the real observer: real inotify, real git."""

from __future__ import annotations

import errno
import os
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger
from watchdog.observers.inotify import InotifyWatchGroup

from tests.conftest import git
from watcher.errors import WatcherError
from watcher.hints import Hint, HintKind
from watcher.inotify import ReportingEmitter, ReportingInotifyObserver, Trouble
from watcher.sources import FilesystemSource
from watcher.watchplan import WatchPlan, is_editor_file

QUIET = 0.1
NOTHING_WITHIN = 4 * QUIET


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "checkout"
    git("init", "--quiet", "--initial-branch=main", str(repo), cwd=tmp_path)
    (repo / "coordination").mkdir()
    (repo / "coordination" / "jobs.json").write_text('{"jobs": []}\n')
    git("add", "-A", cwd=repo)
    git("commit", "--quiet", "-m", "layout", cwd=repo)
    return repo


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    seen: list[str] = []
    sink = logger.add(lambda message: seen.append(str(message)), level="WARNING")
    yield seen
    logger.remove(sink)


class Running:
    """A started source and the hints it has put in its queue."""

    def __init__(self, source: FilesystemSource, hints: queue.Queue[Hint]) -> None:
        self.source = source
        self.hints = hints

    def next(self, timeout: float = 5.0) -> Hint:
        return self.hints.get(timeout=timeout)

    def next_of(self, kind: HintKind, timeout: float = 5.0) -> Hint:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            hint = self.hints.get(timeout=left)
            if hint.kind is kind:
                return hint
        raise AssertionError(f"no {kind} hint within {timeout} s")

    def assert_only(self, kind: HintKind) -> None:
        """Hints of `kind` may still come (a ref moves in steps), nothing else."""
        try:
            while True:
                assert self.hints.get(timeout=NOTHING_WITHIN).kind is kind
        except queue.Empty:
            pass

    def assert_quiet(self) -> None:
        with pytest.raises(queue.Empty):
            hint = self.hints.get(timeout=NOTHING_WITHIN)
            pytest.fail(f"unexpected hint {hint}")


@pytest.fixture
def start(checkout: Path) -> Iterator[Any]:
    started: list[FilesystemSource] = []

    def make(
        kind: type[FilesystemSource] = FilesystemSource, **options: Any
    ) -> Running:
        hints: queue.Queue[Hint] = queue.Queue()
        plan = WatchPlan.for_checkout(checkout)
        source = kind(plan, hints.put, quiet=QUIET, poll_interval=0.1, **options)
        source.start()
        started.append(source)
        return Running(source, hints)

    yield make
    for source in started:
        source.stop()


def save(path: Path, text: str) -> None:
    """Save the way editors and the product do: a temporary file, then a rename."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def test_editor_files_are_recognised() -> None:
    for name in ("jobs.json.swp", "jobs.json~", ".#jobs.json", "#jobs.json#", "4913"):
        assert is_editor_file(name), name
    assert is_editor_file(".~lock.jobs.json#")
    assert not is_editor_file("jobs.json")


def test_a_save_by_rename_is_one_change_of_the_target(
    checkout: Path, start: Any
) -> None:
    running = start()

    save(checkout / "coordination" / "jobs.json", '{"jobs": [1]}\n')

    assert running.next() == Hint(HintKind.FILES, frozenset({"coordination/jobs.json"}))
    running.assert_quiet()


def test_editor_swap_backup_and_temporary_files_are_ignored(
    checkout: Path, start: Any
) -> None:
    running = start()
    folder = checkout / "coordination"

    for name in (".jobs.json.swp", "jobs.json~", "4913", ".#jobs.json", "#jobs.json#"):
        (folder / name).write_text("x")
    (folder / "notes.txt").write_text("not a coordination file")

    running.assert_quiet()


def test_nothing_under_git_counts_except_head_moving(
    checkout: Path, start: Any
) -> None:
    running = start()

    git("config", "core.something", "1", cwd=checkout)
    git("hash-object", "-w", "--stdin", cwd=checkout)
    running.assert_quiet()
    git("commit", "--quiet", "--allow-empty", "-m", "moves HEAD", cwd=checkout)

    assert running.next().kind is HintKind.REFS
    running.assert_only(HintKind.REFS)


def test_a_burst_settles_into_one_batch(checkout: Path, start: Any) -> None:
    running = start()
    written = {f"build{n}/status.json" for n in range(50)}

    for path in written:
        (checkout / path).parent.mkdir()
        (checkout / path).write_text("{}\n")

    seen = running.next(timeout=10)
    assert seen.kind is HintKind.FILES
    assert seen.paths == written
    running.assert_quiet()


def test_a_batch_waits_until_git_releases_the_index(checkout: Path, start: Any) -> None:
    running = start()
    lock = checkout / ".git" / "index.lock"

    lock.write_text("")
    save(checkout / "coordination" / "jobs.json", '{"jobs": [2]}\n')
    running.assert_quiet()
    lock.unlink()

    assert running.next().paths == {"coordination/jobs.json"}


def test_a_new_server_directory_is_watched_with_what_it_holds(
    checkout: Path, start: Any
) -> None:
    running = start()

    staging = checkout.parent / "staging"
    staging.mkdir()
    (staging / "status.json").write_text("{}\n")
    os.rename(staging, checkout / "build7")
    first = running.next()
    save(checkout / "build7" / "heartbeat.json", "{}\n")

    assert first.paths == {"build7/status.json"}
    assert running.next().paths == {"build7/heartbeat.json"}


def test_kernel_queue_overflow_warns_and_asks_for_a_rescan(
    checkout: Path, start: Any, warnings: list[str]
) -> None:
    """Provoked for real: watchdog's reader thread is held on the watch group's lock
    while the directory makes more events than `fs.inotify.max_queued_events`, so
    the kernel drops events and queues IN_Q_OVERFLOW."""
    running = start()
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    group = _watch_group(running.source, checkout / "coordination")
    folder = checkout / "coordination" / "burst"
    folder.mkdir()
    save(folder / "first.json", "{}\n")
    assert running.next().paths == {"coordination/burst/first.json"}

    with group._lock:
        for n in range(limit + 2048):  # two events each, past what the reader took
            os.close(os.open(folder / f"f{n}.json", os.O_CREAT | os.O_WRONLY))

    assert running.next_of(HintKind.RESCAN, timeout=20).kind is HintKind.RESCAN
    assert any("overflowed" in line for line in warnings)
    assert running.source.is_healthy()


def test_watch_limit_at_start_falls_back_to_polling(
    checkout: Path, start: Any, warnings: list[str]
) -> None:
    """Injected: the inotify emitter raises ENOSPC as inotify_add_watch does when
    `fs.inotify.max_user_watches` is used up."""
    running = start(inotify_observer=ExhaustedObserver)

    assert running.source.is_polling
    assert any("fs.inotify.max_user_watches" in line for line in warnings)
    save(checkout / "coordination" / "jobs.json", '{"jobs": [3]}\n')
    assert running.next().paths == {"coordination/jobs.json"}


def test_watches_running_out_later_switch_to_polling(
    checkout: Path, start: Any, warnings: list[str]
) -> None:
    """Injected: watchdog's reporting watch group is told that a subdirectory could
    not be watched, as it is when inotify_add_watch fails with ENOSPC mid-tree."""
    running = start()
    group = _watch_group(running.source, checkout / "coordination")

    group.report(Trouble.WATCH_LIMIT)
    assert not running.source.is_healthy()
    running.source.check()

    assert running.source.is_polling
    assert any("sysctl fs.inotify.max_user_watches" in line for line in warnings)
    assert running.next_of(HintKind.RESCAN).kind is HintKind.RESCAN
    save(checkout / "coordination" / "jobs.json", '{"jobs": [4]}\n')
    assert running.next_of(HintKind.FILES).paths == {"coordination/jobs.json"}


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_observer_is_noticed_and_restarted(
    checkout: Path, start: Any, warnings: list[str]
) -> None:
    """Real thread death: the first event handed to the source raises inside
    watchdog's dispatch thread, which ends that thread."""
    running = start(CrashOnceSource)
    dying = running.source._observer

    save(checkout / "coordination" / "jobs.json", '{"jobs": [5]}\n')
    dying.join(timeout=5)
    assert not running.source.is_healthy()
    running.source.check()

    assert running.source.is_healthy()
    assert any("restarting" in line for line in warnings)
    assert running.next_of(HintKind.RESCAN).kind is HintKind.RESCAN
    save(checkout / "coordination" / "jobs.json", '{"jobs": [6]}\n')
    assert running.next_of(HintKind.FILES).paths == {"coordination/jobs.json"}


def test_a_dead_inotify_reader_is_noticed_and_replaced(
    checkout: Path, start: Any, warnings: list[str]
) -> None:
    """The thread that reads the inotify descriptor is stopped from outside; the
    observer and its emitters live on, deaf, which the health check must see."""
    running = start()
    reader = running.source._observer._inotify_fd
    reader.stop()
    reader.join(timeout=5)

    assert not running.source.is_healthy()
    running.source.check()

    assert running.source.is_healthy()
    save(checkout / "coordination" / "jobs.json", '{"jobs": [7]}\n')
    assert running.next_of(HintKind.FILES).paths == {"coordination/jobs.json"}


def test_an_observer_that_keeps_dying_stops_the_daemon(
    checkout: Path, start: Any
) -> None:
    running = start()

    with pytest.raises(WatcherError, match="stopped"):
        for _ in range(10):
            running.source._observer.stop()
            running.source._observer.join()
            running.source.check()


class ExhaustedEmitter(ReportingEmitter):
    def on_thread_start(self) -> None:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")


class ExhaustedObserver(ReportingInotifyObserver):
    def __init__(self, report: Any) -> None:
        super().__init__(report)
        self._emitter_class = ExhaustedEmitter


class CrashOnceSource(FilesystemSource):
    crashed = False

    def _on_event(self, event: Any) -> None:
        if not self.crashed:
            self.crashed = True
            raise RuntimeError("a bug in an event handler")
        super()._on_event(event)


def _watch_group(source: FilesystemSource, directory: Path) -> InotifyWatchGroup:
    assert source._observer is not None
    for emitter in source._observer.emitters:
        if Path(emitter.watch.path) == directory:
            return emitter._inotify
    raise AssertionError(f"no watch on {directory}")
