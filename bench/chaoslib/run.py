"""The whole run: build the fleet, start it, load it, fault it, drain it, judge it."""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from chaoslib import report
from chaoslib.daemons import Daemons
from chaoslib.faults import FINISHED, FaultRecord, Injector, until
from chaoslib.fleet import Fleet
from chaoslib.invariants import RunData, run_checks
from chaoslib.plan import FULL, SHORT, Plan, make_plan
from chaoslib.remote import Remote
from chaoslib.workload import Ledger, Workload


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/chaos",
        description="Run a fleet of real daemons under faults and check that nothing "
        "is lost. Exit status 0 when every invariant holds.",
    )
    parser.add_argument("--seed", type=int, help="the run's seed (default: random)")
    parser.add_argument("--short", action="store_true", help="3 servers, 12 jobs")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--workdir", type=Path, help="where to build the fleet")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--unit-cleanup",
        action="store_true",
        help="after kill -9, kill the daemon's leftover builds before the restart, "
        "as systemd's cgroup would (default: leave them to the restarted daemon)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    seed = args.seed if args.seed is not None else random.randrange(1, 10**6)
    plan = make_plan(seed, SHORT if args.short else FULL)
    print(f"chaos: seed {seed} ({plan.mode.name} mode)", file=sys.stderr, flush=True)
    root = args.workdir or Path(tempfile.mkdtemp(prefix=f"chaos-{seed}-"))
    root.mkdir(parents=True, exist_ok=True)
    owned = Path(f"/tmp/owned-{seed}")
    owned.unlink(missing_ok=True)
    result = Run(plan, root, unit_cleanup=args.unit_cleanup).execute()
    print(json.dumps(result, indent=2) if args.json else report.render(result))
    if result["ok"] and not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"chaos: the run's files are in {root}", file=sys.stderr)
    return 0 if result["ok"] else 1


class Run:
    def __init__(self, plan: Plan, root: Path, *, unit_cleanup: bool) -> None:
        self.plan = plan
        self.fleet = Fleet(root, plan)
        self.daemons = Daemons(self.fleet, unit_cleanup=unit_cleanup)
        self.ledger = Ledger()
        self.origin = 0.0
        self.injector = Injector(self.fleet, self.daemons, self.ledger, self.clock)
        self.faults: list[FaultRecord] = []

    def clock(self) -> float:
        return time.monotonic() - self.origin

    def say(self, text: str) -> None:
        print(f"chaos: {self.clock():7.1f} s  {text}", file=sys.stderr, flush=True)

    def execute(self) -> dict[str, object]:
        self.fleet.create()
        self.daemons.start_all()
        self.origin = time.monotonic()
        self.say(f"{len(self.plan.servers)} daemons ready in {self.fleet.root}")
        workload = Workload(self.fleet, self.ledger, self.clock)
        workload.start()
        self._inject_faults()
        workload.join()
        self.say("workload submitted; draining")
        drained = self._drain()
        seconds = self.clock()
        self.say(f"drained: {drained}; stopping the daemons")
        exits = self.daemons.stop_all()
        data = RunData.collect(
            RunData(
                self.fleet,
                self.ledger,
                self.faults,
                self.injector.findings,
                self.daemons.slots,
                exits,
            )
        )
        checks = run_checks(data)
        return report.compute(data, checks, seconds)

    def _inject_faults(self) -> None:
        for spec in self.plan.faults:
            delay = spec.at - self.clock()
            if delay > 0:
                time.sleep(delay)
            self.say(f"fault #{spec.key}: {spec.kind.value} ({spec.target})")
            record = self.injector.run(spec)
            self.faults.append(record)
            self.say(
                f"fault #{spec.key} over: recovered in {record.recovery_seconds} s"
                + (f"; problems: {record.problems}" if record.problems else "")
            )

    def _drain(self) -> bool:
        """Until every job ended, every queue is empty and every message arrived."""
        remote = Remote(self.fleet.remote)

        def settled() -> bool:
            jobs = remote.jobs()
            if any(job.get("status") not in FINISHED for job in jobs):
                return False
            if any(self.fleet.outbox_entries(n) for n in self.plan.servers):
                return False
            present = {str(m.get("id")) for m in remote.messages()}
            return set(self.ledger.accepted_messages()) <= present

        return until(settled, self.plan.mode.drain_timeout, interval=1.0)
