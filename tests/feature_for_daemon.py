"""A feature module for tests/test_daemon.py: proves `install(daemon)` is called."""

from __future__ import annotations

from typing import Any


def install(daemon: Any) -> None:
    daemon.installed_by_test = True
