"""Waking a running daemon: a unix datagram socket in the state directory.

Git hooks call `notify_daemon` after a merge, checkout or rewrite. It sends one
datagram without waiting and returns at once; with no daemon listening (no socket,
or a socket left by a daemon that died) it returns False and says nothing. The
daemon's `WakeListener` turns each datagram into a hint.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from loguru import logger

from watcher.errors import WatcherError

SOCKET_NAME = "wake.sock"
_MAX_MESSAGE = 64
# sockaddr_un holds 108 bytes; longer paths go through /proc/self/fd (see _address).
_MAX_SOCKET_PATH = 100


def socket_path(state_path: Path) -> Path:
    return state_path / SOCKET_NAME


@contextlib.contextmanager
def _address(path: Path) -> Iterator[str]:
    """An address for `path` short enough for a unix socket, however deep it is."""
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        yield str(path)
        return
    directory = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{directory}/{path.name}"
    finally:
        os.close(directory)


def notify_daemon(state_path: Path, reason: str = "hook") -> bool:
    """Tell the daemon of this checkout to look now; False when none is listening."""
    path = socket_path(state_path)
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        try:
            with _address(path) as address:
                sender.sendto(reason.encode("ascii", "replace")[:_MAX_MESSAGE], address)
        except BlockingIOError:
            return True  # its queue is full, so it has wakes pending already
        except OSError:
            return False  # no daemon, a stale socket, or not ours to write to
    return True


class WakeListener:
    """The daemon's end: calls `on_wake(reason)` for every datagram received."""

    def __init__(self, state_path: Path, on_wake: Callable[[str], None]) -> None:
        self.path = socket_path(state_path)
        self._on_wake = on_wake
        self._token = secrets.token_hex(16).encode()
        self._socket: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="wake", daemon=True)

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if notify_daemon(self.path.parent, "probe"):
            raise WatcherError(
                f"another daemon already listens on {self.path}",
                hint="stop it first (`systemctl stop build-watcher`) "
                "or use another checkout",
            )
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        with _address(self.path) as address:
            self._socket.bind(address)
        # Hooks run as whoever commits; the group that may use the checkout may wake it.
        os.chmod(self.path, 0o660)
        self._thread.start()

    def stop(self) -> None:
        if self._socket is None:
            return
        with contextlib.suppress(OSError), _address(self.path) as address:
            self._socket.sendto(self._token, address)
        self._thread.join(timeout=5)
        self._socket.close()
        self._socket = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _run(self) -> None:
        assert self._socket is not None
        while True:
            message = self._socket.recv(_MAX_MESSAGE)
            if message == self._token:
                return
            reason = message.decode("ascii", "replace")
            logger.debug("woken: {reason}", reason=reason)
            self._on_wake(reason)
