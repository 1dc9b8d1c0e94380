"""The systemd notify protocol: READY=1, WATCHDOG=1, STOPPING=1 and STATUS=.

systemd passes `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace) to a
`Type=notify` service, and `$WATCHDOG_USEC` when `WatchdogSec=` is set. Outside
systemd every call here does nothing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from loguru import logger


class SystemdNotifier:
    """Sends state lines to the service manager, if there is one."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_interval = _watchdog_interval(env)

    @property
    def is_enabled(self) -> bool:
        return self.address is not None

    def notify(self, *states: str) -> bool:
        """Send `KEY=value` lines in one datagram; False when nobody listens."""
        if self.address is None:
            return False
        message = "\n".join(states).encode("utf-8")
        with socket.socket(
            socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
        ) as out:
            try:
                out.connect(self.address)
                out.sendall(message)
            except OSError as error:
                logger.debug("cannot notify systemd: {error}", error=error)
                return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def stopping(self, status: str = "stopping") -> bool:
        return self.notify("STOPPING=1", f"STATUS={status}")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")


def _socket_address(value: str) -> str | None:
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    return value if value.startswith("/") else None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Half of WATCHDOG_USEC in seconds, when the watchdog is meant for this process."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2_000_000
