"""Benchmark: main-branch commits per server per simulated day of heartbeats.

    .venv/bin/python bench/heartbeats.py [--beats 1440] [--interval 60] [--builds 10]

Runs the real heartbeat logic (`HeartbeatPublisher.beat`: a parentless commit
force-pushed to `heartbeat/<server>`, and the main copy of the heartbeat
refreshed when due) for a simulated day against a real bare remote in a
temporary directory, with the clocks injected, and counts what the main branch
gained. Two days are simulated:

- idle: the server only beats;
- busy: it also runs `--builds` builds a day, each changing its status twice
  (building, then success), through the same `StatusUpdate` the worker uses.

The naive design, committing every heartbeat to the main branch, costs one
commit per beat by construction (1,440 a day at 60 s); the real history shows
about that from each of its two servers (some 2,500 heartbeat-only commits in
ten days, with beats that were often late or missed).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from loguru import logger

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from watcher import transaction  # noqa: E402
from watcher.config import Config  # noqa: E402
from watcher.documents import Snapshot, dump_document, read_snapshot  # noqa: E402
from watcher.layout import empty_documents  # noqa: E402
from watcher.serverstatus import HeartbeatPublisher, StatusUpdate  # noqa: E402

START = datetime(2025, 11, 5, 0, 0, 0, tzinfo=UTC)
SYSTEM = {"cpu_usage": 2.0, "memory_used_gb": 8.0, "disk_free_gb": 450.0}


class SimulatedClock:
    """Monotonic and wall clocks that move only when told to."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def monotonic(self) -> float:
        return self.seconds

    def wall(self) -> datetime:
        return START + timedelta(seconds=self.seconds)


def git(*args: str, cwd: Path) -> str:
    completed = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    )
    return completed.stdout


def make_fleet(root: Path) -> tuple[Path, Path]:
    """A bare remote with the empty layout on main, and one server's clone."""
    remote, seed, checkout = root / "remote.git", root / "seed", root / "build1"
    git("init", "-q", "--bare", "--initial-branch=main", str(remote), cwd=root)
    git("init", "-q", "--initial-branch=main", str(seed), cwd=root)
    for path, value in empty_documents().items():
        (seed / path).parent.mkdir(parents=True, exist_ok=True)
        (seed / path).write_bytes(dump_document(value))
    git("add", "-A", cwd=seed)
    for key, value in (("user.name", "bench"), ("user.email", "bench@example.invalid")):
        git("config", key, value, cwd=seed)
    git("commit", "-q", "-m", "layout", cwd=seed)
    git("push", "-q", str(remote), "main", cwd=seed)
    git("clone", "-q", str(remote), str(checkout), cwd=root)
    return remote, checkout


def simulate_day(
    root: Path, beats: int, interval: float, builds: int
) -> dict[str, float]:
    remote, checkout = make_fleet(root)
    config = Config(repo=checkout, node="build1", heartbeat_interval=interval)
    clock = SimulatedClock()
    # Transactions stamp documents with the time; in a simulated day that is the
    # simulated clock, as the heartbeat documents are.
    transaction.now_utc = clock.wall  # type: ignore[attr-defined]
    state = {"snapshot": Snapshot(None)}

    def snapshot() -> Snapshot:
        state["snapshot"] = read_snapshot(
            checkout, config.tracking_ref, state["snapshot"]
        )
        return state["snapshot"]

    def transact(operation: transaction.Operation) -> transaction.Outcome:
        return transaction.transact(config, operation)

    publisher = HeartbeatPublisher(
        config,
        transact,
        snapshot,
        monotonic=clock.monotonic,
        wall=clock.wall,
        system=lambda: SYSTEM,
    )
    before = int(git("rev-list", "--count", "main", cwd=remote))
    schedule = build_schedule(beats, builds)
    started = time.perf_counter()
    for number in range(beats):
        if number in schedule:
            transact(StatusUpdate("build1", *schedule[number], system=SYSTEM))
        publisher.beat()
        clock.seconds += interval
    elapsed = time.perf_counter() - started
    return {
        "main": int(git("rev-list", "--count", "main", cwd=remote)) - before,
        "branch": int(git("rev-list", "--count", "heartbeat/build1", cwd=remote)),
        "seconds": elapsed,
    }


def build_schedule(beats: int, builds: int) -> dict[int, tuple[str, str | None]]:
    """Beat number to (status, job): builds spread over the day, half an hour each."""
    schedule: dict[int, tuple[str, str | None]] = {}
    for build in range(builds):
        begin = (build * beats) // max(builds, 1) + 7
        schedule[begin] = ("building", f"job_{build}")
        schedule[begin + 30] = ("success", None)
    return {beat: entry for beat, entry in schedule.items() if beat < beats}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--beats", type=int, default=1440, help="beats in the day")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds")
    parser.add_argument("--builds", type=int, default=10, help="builds on the busy day")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    hours = args.beats * args.interval / 3600
    print(f"simulated day: {args.beats} beats every {args.interval:g} s ({hours:g} h)")
    print(
        f"naive design (every beat committed to main): {args.beats:,} main commits",
        flush=True,
    )
    for name, builds in (("idle", 0), (f"busy, {args.builds} builds", args.builds)):
        with tempfile.TemporaryDirectory(prefix="bench-heartbeats-") as scratch:
            figures = simulate_day(Path(scratch), args.beats, args.interval, builds)
        share = 100 * figures["main"] / args.beats
        print(
            f"{name}: {figures['main']:,} main commits ({share:.1f}% of naive), "
            f"heartbeat branch holds {figures['branch']} commit, "
            f"{figures['seconds']:.0f} s to simulate "
            f"({1000 * figures['seconds'] / args.beats:.0f} ms per beat)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
