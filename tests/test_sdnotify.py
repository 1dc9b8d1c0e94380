"""The systemd notify protocol against a real datagram socket."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from watcher.sdnotify import SystemdNotifier


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A socket standing in for systemd's notification socket."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        listener.settimeout(5)
        yield str(path), listener


def test_outside_systemd_nothing_is_sent() -> None:
    notifier = SystemdNotifier({})

    assert not notifier.is_enabled
    assert notifier.ready() is False
    assert notifier.watchdog_interval is None


def test_ready_and_status_arrive_in_one_datagram(
    manager: tuple[str, socket.socket],
) -> None:
    address, listener = manager
    notifier = SystemdNotifier({"NOTIFY_SOCKET": address})

    assert notifier.ready("watching build1")

    assert listener.recv(256) == b"READY=1\nSTATUS=watching build1"


def test_watchdog_and_stopping(manager: tuple[str, socket.socket]) -> None:
    address, listener = manager
    notifier = SystemdNotifier({"NOTIFY_SOCKET": address})

    notifier.watchdog()
    notifier.stopping()

    assert listener.recv(256) == b"WATCHDOG=1"
    assert listener.recv(256) == b"STOPPING=1\nSTATUS=stopping"


def test_abstract_socket_address() -> None:
    name = f"build-watcher-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)
        listener.settimeout(5)

        assert SystemdNotifier({"NOTIFY_SOCKET": "@" + name}).status("syncing")
        assert listener.recv(256) == b"STATUS=syncing"


def test_watchdog_interval_is_half_the_timeout_for_this_process() -> None:
    mine = {"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid())}
    other = {"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}

    assert SystemdNotifier(mine).watchdog_interval == 30.0
    assert SystemdNotifier(other).watchdog_interval is None


def test_a_vanished_manager_is_not_an_error(tmp_path: Path) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})

    assert notifier.watchdog() is False
