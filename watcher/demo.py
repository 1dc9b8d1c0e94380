"""`build-watcher demo`: a small fleet on this machine, end to end, and its check.

The script: three servers start; the operator submits a slow job, then quick
builds, and sends a broadcast and a `ping`; the server that took the slow job is
killed (daemon and build at once) while it builds; the others notice it stale,
requeue its job and one of them takes it over; the killed server comes back.
Every wait has a deadline, and each promise is checked at the end from what the
shared repository and the daemons recorded. The timeline is the replayed history
(the lines `build-watcher log` prints) plus the liveness changes each daemon
saw, which no commit records.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watcher.config import load_config
from watcher.demofleet import OPERATOR, Daemons, FleetPaths, create_fleet, run_cli
from watcher.demopromises import Check, Plan, check_promises
from watcher.demotimeline import Timeline
from watcher.errors import WatcherError
from watcher.fleet import FleetView, load_fleet
from watcher.gitrepo import resolve_commit
from watcher.history import is_ancestor
from watcher.judgement import VIEW_FILE

SERVERS = ("build1", "build2", "build3")
QUICK_BUILDS = 3
POLL = 0.2
STEP_DEADLINE = 30.0

Emit = Callable[[str], None]


class DemoFailed(WatcherError):
    """Something the demo promises did not happen."""


@dataclass
class DemoReport:
    """What the demo showed: the checks, the fleet at the end, how long it took."""

    checks: list[Check] = field(default_factory=list)
    fleet: FleetView | None = None
    seconds: float = 0.0
    stopped: dict[str, int | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


class Demo:
    """One run of the scenario in `paths.root`, narrating through `emit`."""

    def __init__(self, paths: FleetPaths, emit: Emit) -> None:
        self.paths = paths
        self.emit = _one_at_a_time(emit)
        self.daemons = Daemons(paths)
        self.timeline = Timeline(paths.remote, self.emit)
        self.plan = Plan()
        self.started = time.monotonic()

    def run(self) -> DemoReport:
        """The whole scenario; the daemons are stopped whatever happens."""
        report = DemoReport()
        try:
            self.set_up()
            self.start_slow_job()
            self.kill_and_keep_working()
            self.take_over()
            self.finish()
            report.fleet = self.fleet_view()
            report.checks = check_promises(self.timeline, self.plan, SERVERS)
        finally:
            report.stopped = self.daemons.stop_all()
            report.seconds = time.monotonic() - self.started
        return report

    # The steps.

    def set_up(self) -> None:
        self.say(
            "a bare remote, the sample project, and `build-watcher init` for "
            f"the operator and {len(SERVERS)} servers"
        )
        create_fleet(self.paths, SERVERS)
        for node in SERVERS:
            self.daemons.start(node)
        self.say("daemons starting: " + ", ".join(SERVERS))
        self.wait(
            "every daemon starts",
            lambda: all(self.daemons.is_ready(node) for node in SERVERS),
        )
        self.wait("every server joins", lambda: self.timeline.joined() >= set(SERVERS))

    def start_slow_job(self) -> None:
        """Queue the slow job and wait until its holder is building it."""
        plan = self.plan
        plan.slow_job = self.submit(OPERATOR, "slow")
        plan.victim = self.wait(
            "the slow job is claimed", lambda: self.timeline.holder(plan.slow_job, 1)
        )
        self.wait(
            f"{plan.victim} runs the slow build",
            lambda: self.daemons.build_running(plan.victim),
        )

    def kill_and_keep_working(self) -> None:
        """Kill the slow job's holder, then queue builds and mail all at once."""
        plan = self.plan
        killed = self.daemons.kill(plan.victim)
        self.say(f"{plan.victim} killed, daemon and build (pids {killed})")
        sender, plan.pinged = self.survivors()
        with ThreadPoolExecutor(max_workers=QUICK_BUILDS + 2) as pool:
            builds = [
                pool.submit(self.submit, OPERATOR, "build") for _ in range(QUICK_BUILDS)
            ]
            broadcast = ("all", "info", "hello fleet", "Three builds and a slow one.")
            mail = [
                pool.submit(self.send, OPERATOR, *broadcast),
                pool.submit(self.send, sender, plan.pinged, "request", "ping", ""),
            ]
            # The timeline keeps moving while the commands race each other.
            self.wait(
                "the builds and the mail are sent",
                lambda: all(future.done() for future in [*builds, *mail]),
            )
            plan.builds = [future.result() for future in builds]
            plan.ping = mail[1].result()

    def take_over(self) -> None:
        plan = self.plan
        self.wait(
            f"the others notice {plan.victim} is stale",
            lambda: all(
                self.timeline.noticed(node, "server.stale", plan.victim)
                for node in self.survivors()
            ),
        )
        self.wait(
            f"a survivor takes over {plan.slow_job}",
            lambda: self.timeline.holder(plan.slow_job, 2),
        )
        self.daemons.start(plan.victim)
        self.say(f"{plan.victim} restarted")

    def finish(self) -> None:
        plan = self.plan
        self.wait(
            "every job finishes",
            lambda: all(self.timeline.finished(job) for job in plan.jobs),
        )
        self.wait("the ping is answered", lambda: self.timeline.reply_to(plan.ping))
        self.wait(
            f"the others see {plan.victim} back",
            lambda: all(
                self.timeline.noticed(n, "server.recovered", plan.victim)
                for n in self.survivors()
            ),
        )

    def survivors(self) -> list[str]:
        return [node for node in SERVERS if node != self.plan.victim]

    def fleet_view(self) -> FleetView:
        """The fleet as a survivor's daemon judges it (its saved liveness view),
        once that daemon has fetched everything the timeline showed."""
        observer = self.survivors()[0]
        self.wait(
            f"{observer} fetches the last commits",
            lambda: self.has_fetched(observer, self.timeline.tip()),
        )
        config = load_config(
            str(self.paths.checkout(observer)),
            observer,
            str(self.paths.config(observer)),
            environ={},
        )
        return load_fleet(config)

    def has_fetched(self, node: str, commit: str | None) -> bool:
        checkout = self.paths.checkout(node)
        fetched = resolve_commit(checkout, "refs/remotes/origin/main")
        return bool(commit and fetched and is_ancestor(checkout, commit, fetched))

    # Acting and waiting.

    def submit(self, node: str, job_type: str) -> str:
        """`build-watcher submit` as `node`; the new job's id."""
        arguments = ["submit", "--type", job_type, "--branch", "main"]
        result = run_cli(self.paths, node, *arguments)
        self.say(f"{node} submitted a {job_type} job: {result['job_id']}")
        return str(result["job_id"])

    def send(self, node: str, to: str, kind: str, subject: str, body: str) -> str:
        """`build-watcher send` as `node`; the message's id."""
        arguments = ["send", "--to", to, "--type", kind, "--subject", subject]
        result = run_cli(self.paths, node, *arguments, "--body", body)
        self.say(f"{node} sent {kind} {subject!r} to {to}: {result['id']}")
        return str(result["id"])

    def wait(self, what: str, condition: Callable[[], Any], timeout: float = 0) -> Any:
        """Follow the timeline until `condition` holds; DemoFailed at the deadline."""
        deadline = time.monotonic() + (timeout or STEP_DEADLINE)
        while True:
            self.timeline.poll(self.view_files())
            value = condition()
            if value:
                return value
            self.check_daemons()
            if time.monotonic() >= deadline:
                raise DemoFailed(
                    f"the demo failed: {what} did not happen within "
                    f"{timeout or STEP_DEADLINE:g} s",
                    hint=self.failure_hint(),
                )
            time.sleep(POLL)

    def check_daemons(self) -> None:
        exits = self.daemons.unexpected_exits()
        if exits:
            ended = ", ".join(f"{node} (status {code})" for node, code in exits.items())
            raise DemoFailed(
                f"the demo failed: a daemon ended by itself: {ended}",
                hint=self.failure_hint(),
            )

    def view_files(self) -> Mapping[str, Path]:
        """Each server's saved liveness view, in its default state directory."""
        return {
            node: self.paths.checkout(node) / ".git" / "build-watcher" / VIEW_FILE
            for node in SERVERS
        }

    def failure_hint(self) -> str:
        tails = "\n".join(self.daemons.problems(node) for node in SERVERS)
        return (
            f"{tails}\n  the daemons' logs are in {self.paths.root / 'logs'}; "
            "`build-watcher demo --keep DIR` keeps them"
        ).strip()

    def say(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.emit(f"[{elapsed:5.1f}s] == {text}")


def _one_at_a_time(emit: Emit) -> Emit:
    """`emit` for several threads: the commands report from a pool."""
    lock = threading.Lock()

    def locked(line: str) -> None:
        with lock:
            emit(line)

    return locked


def run_demo(root: Path, emit: Emit) -> DemoReport:
    """Run the demo fleet in the empty directory `root` (kept: the caller decides)."""
    return Demo(FleetPaths(root), emit).run()
