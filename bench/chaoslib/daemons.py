"""The servers' daemons: started, killed, restarted and stopped as systemd would.

Each daemon is `python -m watcher --repo CHECKOUT --config FILE --log-format json
watch`, its standard error appended to `logs/<server>.log` (a restart appends to
the same file). Every process of one daemon's life carries `CHAOS_UNIT=<server>`
in its environment, the way systemd puts a service's processes in one cgroup. The
builds a daemon started run in process groups of their own and outlive a `kill -9`
of the daemon; by default the restarted daemon must stop them itself (as it must
when it runs without systemd), and with `unit_cleanup` whatever is left of the
unit is killed before the restart, as systemd's `KillMode=mixed` would.

A daemon that exits without being told to is restarted (systemd's
`Restart=on-failure`) and recorded: at the end, an unexpected exit is a failure.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from chaoslib.fleet import Fleet

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 90.0
UNIT_VARIABLE = "CHAOS_UNIT"


@dataclass
class Slot:
    """One server's daemon across its lives."""

    node: str
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    killed: int = 0
    unexpected: list[int] = field(default_factory=list)
    leftovers_killed: int = 0


class Daemons:
    def __init__(self, fleet: Fleet, *, unit_cleanup: bool = False) -> None:
        self.fleet = fleet
        self.unit_cleanup = unit_cleanup
        self.slots = {node: Slot(node) for node in fleet.plan.servers}
        self.lock = threading.Lock()
        self.monitoring = threading.Event()
        self._monitor = threading.Thread(target=self._watch, daemon=True)

    def start(self, node: str) -> float:
        """Start `node`'s daemon and wait until it says it is ready; seconds taken."""
        slot = self.slots[node]
        log = self.fleet.log_path(node)
        offset = log.stat().st_size if log.exists() else 0
        env = self.fleet.env(node)
        env[UNIT_VARIABLE] = node
        config = str(self.fleet.configs[node])
        command = self.fleet.command(node, "--config", config, "--log-format", "json")
        started = time.monotonic()
        with log.open("ab") as handle:
            process = subprocess.Popen(
                [*command, "watch"],
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=handle,
                env=env,
            )
        with self.lock:
            slot.process = process
            slot.starts += 1
        wait_ready(log, offset, process)
        return time.monotonic() - started

    def start_all(self) -> None:
        for node in self.slots:
            self.start(node)
        self._monitor.start()
        self.monitoring.set()

    def kill(self, node: str) -> int:
        """`kill -9` of the daemon alone; its builds keep running for now."""
        slot = self.slots[node]
        with self.lock:
            process = slot.process
            slot.process = None
            slot.killed += 1
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        return process.pid

    def restart(self, node: str) -> float:
        """What systemd does next: clear the unit's leftovers, start again."""
        if self.unit_cleanup:
            self.slots[node].leftovers_killed += kill_unit(node)
        return self.start(node)

    def is_running(self, node: str) -> bool:
        process = self.slots[node].process
        return process is not None and process.poll() is None

    def stop_all(self) -> dict[str, int]:
        """SIGTERM to every daemon (the clean stop); their exit codes."""
        self.monitoring.clear()
        with self.lock:
            processes = {n: s.process for n, s in self.slots.items() if s.process}
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = {}
        for node, process in processes.items():
            try:
                codes[node] = process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[node] = process.wait()
        return codes

    def _watch(self) -> None:
        while True:
            time.sleep(0.5)
            if not self.monitoring.is_set():
                continue
            for node, slot in self.slots.items():
                with self.lock:
                    process = slot.process
                    code = process.poll() if process else None
                    if process is None or code is None:
                        continue
                    slot.unexpected.append(code)
                    slot.process = None
                self.restart(node)


def wait_ready(log: Path, offset: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if any(is_ready(record) for record in read_records(log, offset)):
            return
        if process.poll() is not None:
            raise RuntimeError(
                f"the daemon exited with {process.returncode}; see {log}"
            )
        time.sleep(0.1)
    raise RuntimeError(f"the daemon was not ready within {READY_TIMEOUT} s; see {log}")


def is_ready(record: dict[str, object]) -> bool:
    message = record.get("message")
    return isinstance(message, str) and message.startswith("daemon ready")


def read_records(
    log: Path, offset: int = 0, end: int | None = None
) -> list[dict[str, object]]:
    """The JSON log records of `log` between two byte offsets; other lines skipped."""
    if not log.exists():
        return []
    with log.open("rb") as handle:
        handle.seek(offset)
        data = handle.read() if end is None else handle.read(max(0, end - offset))
    records = []
    for line in data.splitlines():
        try:
            record = json.loads(line)["record"]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def kill_unit(node: str) -> int:
    """SIGKILL every process still marked as part of `node`'s unit; how many."""
    killed = 0
    for process in psutil.process_iter(["pid"]):
        try:
            if process.environ().get(UNIT_VARIABLE) == node:
                process.kill()
                killed += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return killed
