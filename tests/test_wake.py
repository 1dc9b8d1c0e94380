"""Waking the daemon through its socket, with and without a daemon listening."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcher.errors import WatcherError
from watcher.wake import WakeListener, notify_daemon, socket_path


class Woken:
    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.arrived = threading.Event()

    def __call__(self, reason: str) -> None:
        self.reasons.append(reason)
        self.arrived.set()


@pytest.fixture
def listening(tmp_path: Path) -> Iterator[tuple[Path, Woken]]:
    woken = Woken()
    listener = WakeListener(tmp_path / "state", woken)
    listener.start()
    yield tmp_path / "state", woken
    listener.stop()


def test_without_a_daemon_nothing_happens(tmp_path: Path) -> None:
    assert notify_daemon(tmp_path / "missing") is False


def test_a_socket_left_by_a_dead_daemon_is_ignored(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as dead:
        dead.bind(str(socket_path(tmp_path)))

    assert socket_path(tmp_path).exists()
    assert notify_daemon(tmp_path) is False


def test_a_running_daemon_is_woken_with_the_reason(
    listening: tuple[Path, Woken],
) -> None:
    state, woken = listening

    assert notify_daemon(state, "post-merge") is True

    assert woken.arrived.wait(5)
    assert woken.reasons == ["post-merge"]


def test_a_deep_state_directory_still_works(tmp_path: Path) -> None:
    state = tmp_path.joinpath(*["deep-directory-name"] * 8)
    woken = Woken()
    listener = WakeListener(state, woken)
    listener.start()
    try:
        assert len(str(socket_path(state))) > 108
        assert notify_daemon(state, "post-checkout")
        assert woken.arrived.wait(5)
    finally:
        listener.stop()


def test_a_busy_daemon_never_blocks_the_hook(tmp_path: Path) -> None:
    release = threading.Event()
    listener = WakeListener(tmp_path, lambda reason: release.wait(10))
    listener.start()
    try:
        results = [notify_daemon(tmp_path) for _ in range(2000)]
    finally:
        release.set()
        listener.stop()

    assert all(results)


def test_a_second_daemon_on_the_same_checkout_is_refused(
    listening: tuple[Path, Woken],
) -> None:
    state, _ = listening

    with pytest.raises(WatcherError, match="another daemon"):
        WakeListener(state, Woken()).start()


def test_stopping_removes_the_socket(tmp_path: Path) -> None:
    listener = WakeListener(tmp_path, Woken())
    listener.start()

    listener.stop()

    assert not socket_path(tmp_path).exists()
    assert notify_daemon(tmp_path) is False
