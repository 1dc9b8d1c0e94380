"""Benchmark: how soon the daemon reacts, from a change to the handler call.

    .venv/bin/python bench/latency.py [--rounds 30] [--poll-interval 2]

A bare remote on local disk, two checkouts (build1, build2) and the daemon of
build1 running in this process (no feature modules, so nothing else commits), with
a handler that notes the moment it is called. Three paths are timed:

- local: a change of shared/build_config.json committed and pushed from build1's
  own checkout (its refs move on disk): from the moment `git push` returns to the
  handler call. This is the filesystem path: inotify, one comparison, the replay
  (a ref moves atomically, so it is not held back for settling).
- edit: a broken hand edit saved in build1's checkout: from the save to the
  WARNING. A file that fails to parse is checked again one quiet period (50 ms)
  after it settled before it is reported (it may be half-written), so this path
  has a floor of ~100 ms.
- remote: a job submitted from build2 (a transaction pushed to the remote), at a
  random moment of the poll cycle: from the push to build1's handler call, at the
  given poll interval (jitter ±10%). Expect about half the interval.

Median and 99th percentile are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loguru import logger  # noqa: E402

from tests.conftest import seed_remote  # noqa: E402
from watcher.config import Config  # noqa: E402
from watcher.daemon import Daemon  # noqa: E402
from watcher.events import Event, EventKind  # noqa: E402
from watcher.joblist import SubmitJob  # noqa: E402
from watcher.layout import BUILD_CONFIG_PATH  # noqa: E402
from watcher.transaction import transact  # noqa: E402


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


class Stopwatch:
    """Moments at which something was seen, keyed by what was seen."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.arrived = threading.Condition()

    def note(self, key: str) -> None:
        with self.arrived:
            self.seen.setdefault(key, time.monotonic())
            self.arrived.notify_all()

    def wait(self, key: str, timeout: float = 30.0) -> float:
        with self.arrived:
            if not self.arrived.wait_for(lambda: key in self.seen, timeout):
                raise TimeoutError(f"{key} not seen within {timeout} s")
            return self.seen[key]


def make_fleet(root: Path) -> tuple[Path, Path]:
    seed_remote(root / "remote.git", root)
    checkouts = []
    for node in ("build1", "build2"):
        target = root / node
        git("clone", "--quiet", (root / "remote.git").as_uri(), str(target), cwd=root)
        git("config", "user.name", node, cwd=target)
        git("config", "user.email", f"{node}@example.invalid", cwd=target)
        checkouts.append(target)
    return checkouts[0], checkouts[1]


def time_local(checkout: Path, watch: Stopwatch, rounds: int) -> list[float]:
    delays = []
    for number in range(rounds):
        marker = f"local-{number}"
        settings = json.loads((checkout / BUILD_CONFIG_PATH).read_text())
        settings["bench_round"] = marker
        (checkout / BUILD_CONFIG_PATH).write_text(json.dumps(settings, indent=2) + "\n")
        git("add", BUILD_CONFIG_PATH, cwd=checkout)
        git("commit", "--quiet", "-m", marker, cwd=checkout)
        git("push", "--quiet", "origin", "HEAD:main", cwd=checkout)
        pushed = time.monotonic()
        delays.append(watch.wait(marker) - pushed)
    return delays


def time_edits(checkout: Path, watch: Stopwatch, rounds: int) -> list[float]:
    delays = []
    for number in range(rounds):
        path = checkout / "shared" / f"broken-{number}.json"
        path.write_text('{"broken": \n')
        saved = time.monotonic()
        delays.append(watch.wait(f"shared/broken-{number}.json") - saved)
        path.unlink()
    return delays


def time_remote(
    peer: Path, watch: Stopwatch, rounds: int, poll_interval: float
) -> list[float]:
    delays = []
    for _ in range(rounds):
        time.sleep(random.uniform(0, poll_interval))  # any phase of the poll cycle
        request = SubmitJob(type="test", branch="main")
        transact(Config(repo=peer, node="build2"), request)
        pushed = time.monotonic()
        delays.append(watch.wait(request.job_id) - pushed)
    return delays


def start_daemon(checkout: Path, poll_interval: float, watch: Stopwatch) -> Daemon:
    config = Config(repo=checkout, node="build1", poll_interval=poll_interval)
    daemon = Daemon(config, features=())

    def on_event(event: Event) -> None:
        if event.kind is EventKind.CONFIG_CHANGED:
            watch.note(str((event.record or {}).get("bench_round")))
        watch.note(event.subject)

    for kind in EventKind:
        daemon.add_handler(kind, on_event)
    threading.Thread(target=daemon.run, daemon=True).start()
    deadline = time.monotonic() + 30
    while not daemon.dispatcher.thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    return daemon


def catch_edit_warnings(watch: Stopwatch) -> None:
    def sink(message: object) -> None:
        extra = message.record["extra"]  # type: ignore[attr-defined]
        if "path" in extra:
            watch.note(extra["path"])

    logger.remove()
    logger.add(sink, level="WARNING")


def report(name: str, delays: list[float]) -> None:
    ordered = sorted(delays)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    median = statistics.median(delays) * 1000
    print(
        f"{name:<8} n={len(delays):<3} median {median:7.1f} ms"
        f"   p99 {p99 * 1000:7.1f} ms   max {ordered[-1] * 1000:7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--poll-interval", type=float, default=2.0)
    args = parser.parse_args()
    watch = Stopwatch()
    catch_edit_warnings(watch)
    with tempfile.TemporaryDirectory() as scratch:
        own, peer = make_fleet(Path(scratch))
        daemon = start_daemon(own, args.poll_interval, watch)
        report("local", time_local(own, watch, args.rounds))
        report("edit", time_edits(own, watch, args.rounds))
        print(f"(remote at a poll interval of {args.poll_interval:g} s)")
        report("remote", time_remote(peer, watch, args.rounds, args.poll_interval))
        daemon.stop()


if __name__ == "__main__":
    main()
