"""The daemon in this process against real checkouts of a real bare remote.

Each test runs `Daemon.run` on a thread (signals belong to the main thread, so
these stop it with `Daemon.stop`); `tests/test_watch.py` runs real processes.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from tests.conftest import Fleet, git
from watcher import outbox
from watcher.config import Config, HandlerCommand, JobType
from watcher.daemon import Daemon
from watcher.errors import UsageError, WatcherError
from watcher.events import Event, EventKind
from watcher.joblist import SubmitJob
from watcher.sdnotify import SystemdNotifier
from watcher.transaction import OutcomeStatus, transact
from watcher.wake import notify_daemon


def eventually(predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll `predicate` until it returns something true, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.02)
    raise AssertionError(f"not true within {timeout} s: {predicate}")


class Recorder:
    """A handler that remembers what it was given."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def subjects(self, kind: EventKind = EventKind.JOB_QUEUED) -> list[str]:
        return [event.subject for event in self.events if event.kind is kind]


class Running:
    """A daemon running on a thread until `stop`."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.result: int | BaseException | None = None
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            self.result = self.daemon.run()
        except BaseException as error:
            self.result = error

    def start(self) -> Running:
        self.thread.start()
        eventually(lambda: self.daemon.dispatcher.thread.is_alive() or self.result)
        if isinstance(self.result, BaseException):
            raise self.result
        return self

    def stop(self) -> int | BaseException | None:
        self.daemon.stop()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive()
        return self.result


@pytest.fixture
def log() -> Iterator[list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    handle = logger.add(lambda message: records.append(message.record), level="DEBUG")
    yield records
    logger.remove(handle)


def warnings_in(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [record for record in log if record["level"].name == "WARNING"]


@pytest.fixture
def start(fleet: Fleet) -> Iterator[Callable[..., Running]]:
    running: list[Running] = []

    def make(
        node: str = "build1",
        recorder: Recorder | None = None,
        features: tuple[str, ...] = (),
        **settings: Any,
    ) -> Running:
        checkout = fleet.checkouts.get(node) or fleet.clone(node)
        config = Config(repo=checkout, node=node, poll_interval=0.3, kill_grace=2.0)
        daemon = Daemon(replace(config, **settings), features=features)
        if recorder is not None:
            for kind in EventKind:
                daemon.add_handler(kind, recorder)
        running.append(Running(daemon).start())
        return running[-1]

    yield make
    for each in running:
        if each.thread.is_alive():
            assert each.stop() == 0


def submit_from(fleet: Fleet, node: str) -> str:
    checkout = fleet.checkouts.get(node) or fleet.clone(node)
    request = SubmitJob(type="build", branch="main")
    assert transact(Config(repo=checkout, node=node), request).is_done
    return request.job_id


def test_a_job_submitted_on_another_server_reaches_the_handlers(
    fleet: Fleet, start: Callable[..., Running]
) -> None:
    recorder = Recorder()
    start("build1", recorder)

    job = submit_from(fleet, "build2")

    eventually(lambda: job in recorder.subjects())
    [event] = [e for e in recorder.events if e.subject == job]
    assert event.actor == "build2"
    assert event.commit == fleet.remote_log()[0]


def test_a_pull_in_the_checkout_is_seen_long_before_the_next_poll(
    fleet: Fleet, start: Callable[..., Running]
) -> None:
    recorder = Recorder()
    running = start("build1", recorder, poll_interval=600.0)
    job = submit_from(fleet, "build2")

    git("pull", "--quiet", "--ff-only", cwd=running.daemon.config.repo)

    eventually(lambda: job in recorder.subjects())


def test_waking_the_daemon_fetches_at_once(
    fleet: Fleet, start: Callable[..., Running]
) -> None:
    recorder = Recorder()
    running = start("build1", recorder, poll_interval=600.0)
    job = submit_from(fleet, "build2")

    running.daemon.wake()

    eventually(lambda: job in recorder.subjects())


def test_a_git_hook_reaches_the_running_daemon(
    start: Callable[..., Running], log: list[dict[str, Any]]
) -> None:
    running = start("build1")

    assert notify_daemon(running.daemon.config.state_path, "post-merge")

    eventually(lambda: any("post-merge" in str(r["extra"]) for r in log))


def test_a_handler_that_raises_is_logged_and_the_daemon_carries_on(
    fleet: Fleet, start: Callable[..., Running], log: list[dict[str, Any]]
) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("handler bug")

    recorder = Recorder()
    running = start("build1")
    running.daemon.add_handler(EventKind.JOB_QUEUED, broken)
    running.daemon.add_handler(EventKind.JOB_QUEUED, recorder)

    first, second = submit_from(fleet, "build2"), submit_from(fleet, "build2")

    eventually(lambda: second in recorder.subjects())
    assert recorder.subjects() == [first, second]
    failures = [r for r in log if r["level"].name == "ERROR"]
    assert {r["extra"]["subject"] for r in failures} == {first, second}
    assert all(r["exception"] is not None for r in failures)
    assert "broken" in failures[0]["message"]


def test_a_restart_neither_loses_nor_repeats_events(
    fleet: Fleet, start: Callable[..., Running]
) -> None:
    before = Recorder()
    first_run = start("build1", before)
    seen_before = submit_from(fleet, "build2")
    eventually(lambda: seen_before in before.subjects())
    assert first_run.stop() == 0

    while_down = submit_from(fleet, "build2")
    after = Recorder()
    start("build1", after)

    eventually(lambda: while_down in after.subjects())
    assert after.subjects() == [while_down]


def test_a_broken_hand_edit_is_reported_with_file_and_line(
    fleet: Fleet, start: Callable[..., Running], log: list[dict[str, Any]]
) -> None:
    running = start("build1")
    jobs = running.daemon.config.repo / "coordination" / "jobs.json"

    jobs.write_text('{\n  "jobs": [\n    {"id": "job_1",}\n  ]\n}\n')

    [warning] = eventually(lambda: warnings_in(log))
    assert warning["extra"]["path"] == "coordination/jobs.json"
    assert warning["extra"]["line"] == 3
    assert "coordination/jobs.json:3:" in warning["message"]
    assert fleet.remote_file("coordination/jobs.json") == '{\n  "jobs": []\n}\n'


def test_a_broken_document_pushed_by_hand_is_a_warning_with_its_place(
    fleet: Fleet, start: Callable[..., Running], log: list[dict[str, Any]]
) -> None:
    recorder = Recorder()
    start("build1", recorder)
    fleet.push_by_hand("coordination/jobs.json", '{"jobs": [],}\n')

    [warning] = eventually(lambda: warnings_in(log))

    assert warning["extra"]["path"] == "coordination/jobs.json"
    assert "coordination/jobs.json:1:" in warning["message"]
    assert "last valid version stays in force" in warning["message"]
    assert recorder.subjects(EventKind.DOCUMENT_INVALID) == ["coordination/jobs.json"]


def test_a_broken_hand_edit_is_reported_while_a_handler_keeps_the_dispatcher_busy(
    fleet: Fleet, start: Callable[..., Running], log: list[dict[str, Any]]
) -> None:
    released = threading.Event()
    busy = threading.Event()

    def slow_handler(event: Event) -> None:
        busy.set()
        released.wait(timeout=30)

    running = start("build1")
    running.daemon.add_handler(EventKind.JOB_QUEUED, slow_handler)
    submit_from(fleet, "build2")
    eventually(busy.is_set)
    jobs = running.daemon.config.repo / "coordination" / "jobs.json"

    jobs.write_text('{\n  "jobs": [\n')

    try:
        [warning] = eventually(lambda: warnings_in(log))
    finally:
        released.set()
    assert warning["extra"]["path"] == "coordination/jobs.json"
    assert "edited in the checkout" in warning["message"]


def test_a_half_written_file_is_not_reported(
    start: Callable[..., Running], log: list[dict[str, Any]]
) -> None:
    running = start("build1")
    jobs = running.daemon.config.repo / "coordination" / "jobs.json"

    with jobs.open("w") as writer:
        writer.write('{\n  "jobs": [\n')
        writer.flush()
        eventually(lambda: any("looks broken" in r["message"] for r in log))
        writer.write('    {"id": "job_1"}\n  ]\n}\n')

    eventually(running.daemon.edits.is_settled)
    assert warnings_in(log) == []


def test_own_commits_come_back_once_and_are_marked_own(
    fleet: Fleet, start: Callable[..., Running]
) -> None:
    recorder = Recorder()
    running = start("build1", recorder)
    request = SubmitJob(type="build", branch="main")

    assert running.daemon.transact(request).is_done
    peer_job = submit_from(fleet, "build2")

    eventually(lambda: peer_job in recorder.subjects())
    [own] = [e for e in recorder.events if e.subject == request.job_id]
    assert running.daemon.is_own(own)
    assert recorder.subjects().count(request.job_id) == 1


def test_the_workers_claim_and_finish_are_marked_own(
    fleet: Fleet, start: Callable[..., Running]
) -> None:
    recorder = Recorder()
    quick = JobType("quick", (sys.executable, "-c", "pass"))
    running = start(
        "build1", recorder, features=("watcher.worker",), job_types={"quick": quick}
    )
    checkout = fleet.clone("build2")
    request = SubmitJob(type="quick", branch="main")
    assert transact(Config(repo=checkout, node="build2"), request).is_done

    eventually(lambda: request.job_id in recorder.subjects(EventKind.JOB_FINISHED))
    [claimed] = [e for e in recorder.events if e.kind is EventKind.JOB_CLAIMED]
    [finished] = [e for e in recorder.events if e.kind is EventKind.JOB_FINISHED]
    assert claimed.subject == request.job_id
    assert running.daemon.is_own(claimed) and running.daemon.is_own(finished)


def test_the_checkout_follows_the_shared_branch_without_edit_reports(
    fleet: Fleet, start: Callable[..., Running], log: list[dict[str, Any]]
) -> None:
    running = start("build1")
    checkout = running.daemon.config.repo

    submit_from(fleet, "build2")

    eventually(
        lambda: git("rev-parse", "HEAD", cwd=checkout).strip() == fleet.remote_log()[0]
    )
    eventually(lambda: any("settled" in r["message"] for r in log))
    assert warnings_in(log) == []


def test_an_unreachable_remote_at_start_is_a_warning_not_a_failure(
    fleet: Fleet, start: Callable[..., Running], log: list[dict[str, Any]]
) -> None:
    checkout = fleet.clone("build1")
    git("remote", "set-url", "origin", (fleet.root / "gone.git").as_uri(), cwd=checkout)

    start("build1")

    assert any("cannot be reached" in r["message"] for r in warnings_in(log))


def test_an_operation_queued_offline_lands_once_the_remote_is_back(
    fleet: Fleet, start: Callable[..., Running]
) -> None:
    running = start("build1")
    checkout = running.daemon.config.repo
    away = fleet.remote.with_name("away.git")
    fleet.remote.rename(away)
    request = SubmitJob(type="build", branch="main")

    queued = transact(Config(repo=checkout, node="build1"), request)
    assert queued.status is OutcomeStatus.QUEUED
    away.rename(fleet.remote)

    eventually(lambda: request.job_id in fleet.remote_file("coordination/jobs.json"))
    eventually(lambda: not outbox.has_entries(running.daemon.config))


def test_a_second_daemon_on_the_same_checkout_is_refused(
    fleet: Fleet, start: Callable[..., Running]
) -> None:
    running = start("build1")

    with pytest.raises(WatcherError, match="another daemon"):
        Daemon(running.daemon.config, features=()).run()


def test_a_misspelt_handler_placeholder_is_refused_before_any_write(
    fleet: Fleet,
) -> None:
    handler = HandlerCommand("job.finished", ("/bin/echo", "{subjct}"))
    config = Config(repo=fleet.clone("build1"), node="build1", handlers=(handler,))
    before = fleet.remote_log()

    with pytest.raises(UsageError, match="subjct"):
        Daemon(config).run()

    assert fleet.remote_log() == before


def test_a_wrong_configuration_on_reload_keeps_the_old_one(
    fleet: Fleet, log: list[dict[str, Any]]
) -> None:
    config = Config(repo=fleet.clone("build1"), node="build1")

    def wrong() -> Config:
        raise UsageError("config.toml: `poll_interval` must be float, found str 'x'")

    daemon = Daemon(config, load_config=wrong, features=())
    daemon.reload()

    assert daemon.config is config
    assert any(
        "not reloaded" in r["message"] for r in log if r["level"].name == "ERROR"
    )


def test_a_reload_replaces_the_configured_handlers(
    fleet: Fleet, tmp_path: Path
) -> None:
    config = Config(repo=fleet.clone("build1"), node="build1")
    out = tmp_path / "out"
    handler = HandlerCommand("job.queued", ("sh", "-c", f"cat > {out}"))
    reloaded = replace(config, handlers=(handler,), poll_interval=2.0)
    daemon = Daemon(config, load_config=lambda: reloaded, features=())

    daemon.reload()
    daemon.dispatcher.dispatch(
        Event(
            EventKind.JOB_QUEUED,
            "evt_1",
            None,
            "coordination/jobs.json",
            "job_1",
            None,
            None,
        )
    )

    assert daemon.config.poll_interval == 2.0
    assert '"job_1"' in out.read_text()


def test_a_changed_identity_needs_a_restart(
    fleet: Fleet, log: list[dict[str, Any]]
) -> None:
    config = Config(repo=fleet.clone("build1"), node="build1")
    daemon = Daemon(
        config, load_config=lambda: replace(config, node="build9"), features=()
    )

    daemon.reload()

    assert daemon.node == "build1" and daemon.config is config
    assert any("needs a restart" in str(r["message"]) for r in log)


def test_feature_modules_are_installed(fleet: Fleet) -> None:
    config = Config(repo=fleet.clone("build1"), node="build1")
    daemon = Daemon(config, features=("tests.feature_for_daemon",))

    daemon._install_features()

    assert getattr(daemon, "installed_by_test", False)


def test_a_missing_feature_module_stops_the_start(fleet: Fleet) -> None:
    config = Config(repo=fleet.clone("build1"), node="build1")
    daemon = Daemon(config, features=("watcher.worker", "watcher.not_written"))

    with pytest.raises(WatcherError, match=r"watcher\.not_written") as raised:
        daemon.run()

    assert raised.value.hint is not None and "reinstall" in raised.value.hint
    assert not (config.state_path / "wake.sock").exists()


def test_periodic_tasks_run_on_the_dispatcher(start: Callable[..., Running]) -> None:
    running = start("build1")
    ran: list[str] = []

    running.daemon.add_periodic(
        "count", 0.05, lambda: ran.append(threading.current_thread().name)
    )

    eventually(lambda: len(ran) >= 3)
    assert set(ran) == {"dispatcher"}


def stale_event(server: str) -> Event:
    return Event(
        EventKind.SERVER_STALE,
        f"evt_{server}",
        None,
        f"{server}/heartbeat.json",
        server,
        {"server": server},
        None,
    )


def test_an_emitted_event_reaches_the_handlers_on_the_dispatcher(
    start: Callable[..., Running], log: list[dict[str, Any]]
) -> None:
    running = start("build1")
    threads: list[tuple[str, str]] = []

    def broken(event: Event) -> None:
        raise RuntimeError("handler bug")

    def note(event: Event) -> None:
        threads.append((event.subject, threading.current_thread().name))

    running.daemon.add_handler(EventKind.SERVER_STALE, broken)
    running.daemon.add_handler(EventKind.SERVER_STALE, note)
    running.daemon.emit(stale_event("build2"))
    running.daemon.add_periodic(
        "clock", 60.0, lambda: running.daemon.emit(stale_event("build3"))
    )

    eventually(lambda: len(threads) == 2)
    assert threads == [("build2", "dispatcher"), ("build3", "dispatcher")]
    failures = [r for r in log if r["level"].name == "ERROR"]
    assert [r["extra"]["subject"] for r in failures] == ["build2", "build3"]


def test_state_directory_is_private_to_the_checkout(
    start: Callable[..., Running],
) -> None:
    running = start("build1")

    state = running.daemon.config.state_path
    assert state.is_relative_to(running.daemon.config.repo / ".git")
    assert os.path.exists(state / "wake.sock")


def test_the_watchdog_is_fed_only_while_the_dispatcher_makes_progress(
    fleet: Fleet, tmp_path: Path, log: list[dict[str, Any]]
) -> None:
    release, blocked = threading.Event(), threading.Event()

    def stuck_handler(event: Event) -> None:
        blocked.set()
        release.wait(30)

    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(str(tmp_path / "notify"))
        manager.settimeout(10)
        systemd = {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "400000"}
        config = Config(
            repo=fleet.clone("build1"), node="build1", poll_interval=0.3, kill_grace=2.0
        )
        daemon = Daemon(
            config, features=(), notifier=SystemdNotifier(systemd), stall_limit=2.0
        )
        daemon.add_handler(EventKind.JOB_QUEUED, stuck_handler)
        running = Running(daemon).start()
        try:
            assert manager.recv(256).startswith(b"READY=1")
            assert manager.recv(256) == b"WATCHDOG=1"

            submit_from(fleet, "build2")
            eventually(blocked.is_set)
            # Fed every 0.2 s while healthy: a second of silence means it stopped.
            assert falls_silent(manager, quiet=1.0, within=15.0)

            release.set()
            manager.settimeout(10)
            assert manager.recv(256) == b"WATCHDOG=1"
        finally:
            release.set()
            assert running.stop() == 0
    assert any("not feeding" in r["message"] for r in warnings_in(log))
    assert any("healthy again" in r["message"] for r in log)


def falls_silent(receiver: socket.socket, quiet: float, within: float) -> bool:
    """Whether `receiver` goes `quiet` seconds without a message before `within`."""
    deadline = time.monotonic() + within
    receiver.settimeout(quiet)
    while time.monotonic() < deadline:
        try:
            receiver.recv(256)
        except TimeoutError:
            return True
    return False
