"""End to end: real `build-watcher watch` processes on checkouts of one bare remote.

Logs are read as JSON lines from each daemon's standard error; handler commands
write what they receive to files, which the tests poll with a deadline.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import Fleet, git

pytestmark = pytest.mark.slow

PROGRAM = Path(sys.executable).with_name("build-watcher")
RECORD_EVENT = "import sys; open(sys.argv[1], 'a').write(sys.stdin.read())"


def eventually(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout} s")


def write_config(path: Path, events_file: Path, extra: str = "") -> Path:
    """A fast-polling configuration; `extra` (TOML) adds to or overrides it."""
    command = json.dumps([sys.executable, "-c", RECORD_EVENT, str(events_file)])
    defaults = {"poll_interval": "0.5", "kill_grace": "5"}
    lines = [
        f"{key} = {value}"
        for key, value in defaults.items()
        if not re.search(rf"^{key} *=", extra, re.MULTILINE)
    ]
    scalars, _, tables = extra.partition("[")
    path.write_text(
        "\n".join([*lines, scalars.strip()])
        + "\n"
        + (f"[{tables}\n" if tables else "")
        + f'[[handlers]]\nevent = "*"\ncommand = {command}\n'
    )
    return path


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "JOURNAL"))}
    env.pop("NOTIFY_SOCKET", None)
    env.update(extra or {})
    return env


class DaemonProcess:
    """One `build-watcher watch` with its JSON log records collected as they come."""

    def __init__(self, checkout: Path, config: Path, env: dict[str, str] | None = None):
        self.events_file = config.with_suffix(".events")
        command = [str(PROGRAM), "--repo", str(checkout), "--config", str(config)]
        command += ["--log-format", "json", "-v", "watch"]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=environment(env),
        )
        self.records: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            text = line.decode("utf-8", "replace")
            self.raw.append(text)
            try:
                self.records.append(json.loads(text)["record"])
            except (ValueError, KeyError):
                continue

    def logged(self, level: str, words: str) -> list[dict[str, Any]]:
        return [
            record
            for record in list(self.records)
            if record["level"]["name"] == level and words in record["message"]
        ]

    def wait_ready(self) -> DaemonProcess:
        eventually(lambda: self.logged("INFO", "daemon ready") or self._died())
        return self

    def _died(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError("the daemon exited:\n" + "".join(self.raw))
        return False

    def events(self) -> list[dict[str, Any]]:
        if not self.events_file.exists():
            return []
        lines = self.events_file.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        code = self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        return code


@pytest.fixture
def daemons(fleet: Fleet) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(
        node: str, extra: str = "", env: dict[str, str] | None = None
    ) -> DaemonProcess:
        checkout = fleet.checkouts.get(node) or fleet.clone(node)
        config = write_config(
            fleet.root / f"{node}.toml", fleet.root / f"{node}.events", extra
        )
        started.append(DaemonProcess(checkout, config, env).wait_ready())
        return started[-1]

    yield start
    for daemon in started:
        daemon.stop(signal.SIGKILL) if daemon.process.poll() is None else None


def cli(checkout: Path, *args: str) -> str:
    completed = subprocess.run(
        [str(PROGRAM), "--repo", str(checkout), *args],
        capture_output=True,
        text=True,
        env=environment(),
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_two_daemons_see_a_job_and_a_hand_edit(
    fleet: Fleet, daemons: Callable[..., DaemonProcess]
) -> None:
    first, second = daemons("build1"), daemons("build2")

    job = cli(fleet.checkouts["build2"], "submit", "--type", "test", "--branch", "main")
    job = job.strip()

    seen = eventually(lambda: [e for e in first.events() if e["subject"] == job])
    assert seen[0]["kind"] == "job.queued" and seen[0]["actor"] == "build2"
    eventually(lambda: [e for e in second.events() if e["subject"] == job])

    checkout = fleet.checkouts["build1"]
    eventually(
        lambda: git("rev-parse", "HEAD", cwd=checkout).split() == fleet.remote_log()[:1]
    )
    jobs = checkout / "coordination" / "jobs.json"
    jobs.write_text(jobs.read_text().replace('"type": "test"', '"type": test'))
    [warning] = eventually(lambda: first.logged("WARNING", "coordination/jobs.json"))
    assert warning["extra"]["path"] == "coordination/jobs.json", warning
    assert warning["extra"]["line"] > 1
    assert f"coordination/jobs.json:{warning['extra']['line']}:" in warning["message"]

    assert first.stop() == 0 and second.stop() == 0
    assert first.logged("INFO", "stopped")


@pytest.mark.skipif(
    importlib.util.find_spec("watcher.responder") is None,
    reason="the automatic replies (watcher.responder) are not written yet",
)
def test_a_message_is_answered(
    fleet: Fleet, daemons: Callable[..., DaemonProcess]
) -> None:
    """Both servers run, so each knows the other from its status in the repository."""
    answering = daemons(
        "build1", extra='[[reply_rules]]\ntype = "request"\nreply = "pong"\n'
    )
    asking = daemons("build2")
    eventually(
        lambda: (
            "build2/status.json"
            in git("ls-tree", "-r", "--name-only", "main", cwd=fleet.remote)
        )
    )

    cli(
        fleet.checkouts["build2"],
        "send",
        "--to",
        "build1",
        "--type",
        "request",
        "--subject",
        "are you there",
    )

    def replies() -> list[dict[str, Any]]:
        document = json.loads(fleet.remote_file("coordination/messages.json"))
        return [
            m
            for m in document["messages"]
            if (m.get("from"), m.get("to")) == ("build1", "build2")
        ]

    [reply] = eventually(replies, timeout=30)
    assert reply["body"] == "pong"
    eventually(lambda: [e for e in asking.events() if e["subject"] == reply["id"]])
    assert answering.stop() == 0 and asking.stop() == 0


def test_systemd_is_told_ready_fed_and_stopping(
    fleet: Fleet, daemons: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(str(tmp_path / "notify"))
        manager.settimeout(20)
        env = {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "1000000"}
        daemon = daemons("build1", env=env)

        received = [manager.recv(512).decode() for _ in range(3)]
        assert received[0].startswith("READY=1")
        assert received[1:] == ["WATCHDOG=1", "WATCHDOG=1"]

        daemon.process.send_signal(signal.SIGTERM)
        while (message := manager.recv(512).decode()) == "WATCHDOG=1":
            pass
        assert message.startswith("STOPPING=1")
        assert daemon.stop() == 0


def test_sighup_reloads_and_a_broken_file_keeps_the_old_configuration(
    fleet: Fleet, daemons: Callable[..., DaemonProcess]
) -> None:
    daemon = daemons("build1")
    config = fleet.root / "build1.toml"

    config.write_text(
        config.read_text().replace("poll_interval = 0.5", "poll_interval = 2")
    )
    daemon.process.send_signal(signal.SIGHUP)
    eventually(lambda: daemon.logged("INFO", "configuration reloaded"))

    config.write_text("poll_interval = 'often'\n")
    daemon.process.send_signal(signal.SIGHUP)
    eventually(lambda: daemon.logged("ERROR", "not reloaded"))

    assert daemon.process.poll() is None
    assert daemon.stop(signal.SIGINT) == 0


def test_an_installed_hook_wakes_the_running_daemon(
    fleet: Fleet, daemons: Callable[..., DaemonProcess]
) -> None:
    checkout = fleet.clone("build1")
    cli(checkout, "init")
    daemon = daemons("build1")
    path = f"{PROGRAM.parent}{os.pathsep}{os.environ.get('PATH', '')}"

    subprocess.run(
        ["git", "checkout", "--quiet", "-b", "topic"],
        cwd=checkout,
        env=environment({"PATH": path}),
        check=True,
    )

    # The daemon's own fast-forwards of the checkout ring post-merge as well.
    eventually(
        lambda: [
            entry
            for entry in daemon.logged("DEBUG", "woken")
            if entry["extra"]["reason"] == "post-checkout"
        ]
    )
    assert daemon.stop() == 0


def test_sigterm_gives_handlers_a_grace_period_then_stops_them(
    fleet: Fleet, daemons: Callable[..., DaemonProcess]
) -> None:
    pid_file = fleet.root / "handler.pid"
    script = (
        "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); "
        "time.sleep(120)"
    )
    command = json.dumps([sys.executable, "-c", script, str(pid_file)])
    slow = (
        'kill_grace = 1\n[[handlers]]\nevent = "job.queued"\n'
        f"command = {command}\ntimeout = 300\n"
    )
    daemon = daemons("build1", extra=slow)

    cli(fleet.clone("build2"), "submit", "--type", "test", "--branch", "main")
    pid = int(eventually(lambda: pid_file.exists() and pid_file.read_text()))
    asked = time.monotonic()
    code = daemon.stop()

    assert code == 0
    assert time.monotonic() - asked < 20
    assert daemon.logged("WARNING", "handlers still running")
    assert (
        not psutil.pid_exists(pid)
        or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    )
