"""Jobs and messages, submitted with the command line on the plan's schedule.

Every `build-watcher submit`, `send` and `cancel` runs as its own process in the
checkout of the server the plan names, with `--format json`, so the id (fixed by
the client, also when the remote is away and the operation waits in the offline
queue) and the number of pushes it took are known.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from chaoslib.fleet import CliResult, Fleet
from chaoslib.plan import JobSpec, MessageSpec

BODY = "chaos message {key} from {sender}: nothing to act on, only to be delivered once"


@dataclass(frozen=True)
class Submission:
    """One command's answer: the record id, its status and pushes offered."""

    key: int
    node: str
    record_id: str | None
    status: str
    attempts: int
    code: int
    detail: str


@dataclass
class Ledger:
    """What the workload asked for and what it was told."""

    jobs: list[Submission] = field(default_factory=list)
    messages: list[Submission] = field(default_factory=list)
    cancels: list[Submission] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, submission: Submission) -> None:
        with self.lock:
            getattr(self, kind).append(submission)

    def accepted_jobs(self) -> list[str]:
        return [s.record_id for s in self.jobs if s.record_id and s.code == 0]

    def accepted_messages(self) -> list[str]:
        return [s.record_id for s in self.messages if s.record_id and s.code == 0]


def submission(key: int, node: str, result: CliResult, id_field: str) -> Submission:
    answer = result.json()
    record_id = answer.get(id_field)
    attempts = answer.get("attempts")
    return Submission(
        key=key,
        node=node,
        record_id=record_id if isinstance(record_id, str) else None,
        status=str(answer.get("status", "error")),
        attempts=attempts if isinstance(attempts, int) else 0,
        code=result.code,
        detail=(result.stderr.strip() or str(answer.get("reason", "")))[:300],
    )


def submit_job(fleet: Fleet, spec: JobSpec) -> Submission:
    result = fleet.cli(spec.server, *submit_arguments(spec))
    return submission(spec.key, spec.server, result, "job_id")


def submit_arguments(spec: JobSpec) -> list[str]:
    return [
        "submit", "--type", spec.job_type, "--branch", "main",
        "--priority", str(spec.priority),
        "--description", f"chaos job {spec.key}", "--format", "json",
    ]  # fmt: skip


def submit_burst(fleet: Fleet, specs: list[JobSpec]) -> list[Submission]:
    """Every submission at once, as parallel processes."""
    processes = []
    for spec in specs:
        command = fleet.command(spec.server, *submit_arguments(spec))
        processes.append(
            subprocess.Popen(
                command,
                env=fleet.env(spec.server),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    submissions = []
    for spec, process in zip(specs, processes, strict=True):
        stdout, stderr = process.communicate(timeout=600)
        fleet.note_command(spec.server, stderr)
        result = CliResult((), process.returncode, stdout, stderr, 0.0)
        submissions.append(submission(spec.key, spec.server, result, "job_id"))
    return submissions


def send_message(fleet: Fleet, spec: MessageSpec) -> Submission:
    body = BODY.format(key=spec.key, sender=spec.sender)
    result = fleet.cli(
        spec.sender,
        "send", "--to", spec.to, "--subject", spec.subject, "--body", body,
        "--type", spec.message_type, "--format", "json",
    )  # fmt: skip
    return submission(spec.key, spec.sender, result, "id")


def cancel_job(fleet: Fleet, key: int, node: str, job_id: str) -> Submission:
    result = fleet.cli(node, "cancel", job_id, "--format", "json")
    return Submission(key, node, job_id, "asked", 0, result.code, result.stderr[:300])


class Workload:
    """Two threads: one submits jobs (and cancels some), one sends messages."""

    def __init__(
        self, fleet: Fleet, ledger: Ledger, clock: Callable[[], float]
    ) -> None:
        self.fleet = fleet
        self.ledger = ledger
        self.clock = clock
        self.stopping = threading.Event()
        plan = fleet.plan
        regular = [spec for spec in plan.jobs if not spec.burst]
        self.threads = [
            threading.Thread(target=self._jobs, args=(regular,), daemon=True),
            threading.Thread(target=self._messages, args=(plan.messages,), daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join()

    def _wait_until(self, moment: float) -> None:
        delay = moment - self.clock()
        if delay > 0:
            self.stopping.wait(delay)

    def _jobs(self, specs: list[JobSpec]) -> None:
        cancels: list[tuple[float, JobSpec, str]] = []
        for spec in sorted(specs, key=lambda s: s.at):
            self._wait_until(spec.at)
            self._cancel_due(cancels)
            result = submit_job(self.fleet, spec)
            self.ledger.add("jobs", result)
            if spec.cancel_after is not None and result.record_id:
                cancels.append(
                    (self.clock() + spec.cancel_after, spec, result.record_id)
                )
        for moment, _, _ in cancels:
            self._wait_until(moment)
        self._cancel_due(cancels, everything=True)

    def _cancel_due(
        self, cancels: list[tuple[float, JobSpec, str]], everything: bool = False
    ) -> None:
        now = self.clock()
        for item in list(cancels):
            moment, spec, job_id = item
            if everything or moment <= now:
                cancels.remove(item)
                result = cancel_job(self.fleet, spec.key, spec.server, job_id)
                self.ledger.add("cancels", result)

    def _messages(self, specs: tuple[MessageSpec, ...]) -> None:
        for spec in specs:
            self._wait_until(spec.at)
            self.ledger.add("messages", send_message(self.fleet, spec))
