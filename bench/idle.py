"""Benchmark: what an idle daemon costs, CPU and resident memory, over a minute.

    .venv/bin/python bench/idle.py [--seconds 60] [--poll-interval 10]

A real `build-watcher watch` process with every feature module, on a checkout of
a bare remote on local disk, with the default intervals (a fetch every 10 s, a
heartbeat every 60 s). After it is ready and has settled for a few seconds, its
CPU time (its own, and its own plus its finished children's, the `git` it runs)
and its resident memory are sampled with psutil. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import seed_remote  # noqa: E402

PROGRAM = Path(sys.executable).with_name("build-watcher")
SETTLE = 5.0


def start_daemon(root: Path, poll_interval: float) -> subprocess.Popen[bytes]:
    seed_remote(root / "remote.git", root)
    checkout = root / "build1"
    subprocess.run(
        ["git", "clone", "--quiet", (root / "remote.git").as_uri(), str(checkout)],
        check=True,
    )
    (checkout / ".build_server_id").write_text("build1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["BUILD_WATCHER_POLL_INTERVAL"] = str(poll_interval)
    log = (root / "daemon.log").open("wb")
    return subprocess.Popen(
        [str(PROGRAM), "--repo", str(checkout), "--log-format", "json", "watch"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=env,
    )


def wait_ready(root: Path, daemon: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while b"daemon ready" not in (root / "daemon.log").read_bytes():
        if daemon.poll() is not None or time.monotonic() > deadline:
            raise SystemExit((root / "daemon.log").read_text())
        time.sleep(0.1)


def cpu_seconds(process: psutil.Process) -> tuple[float, float]:
    """(own, own plus waited-for children) CPU seconds."""
    times = process.cpu_times()
    own = times.user + times.system
    return own, own + times.children_user + times.children_system


def measure(daemon: subprocess.Popen[bytes], seconds: float) -> None:
    process = psutil.Process(daemon.pid)
    own_before, all_before = cpu_seconds(process)
    started = time.monotonic()
    peak_rss = 0
    while time.monotonic() - started < seconds:
        peak_rss = max(peak_rss, process.memory_info().rss)
        time.sleep(1)
    elapsed = time.monotonic() - started
    own_after, all_after = cpu_seconds(process)
    own = (own_after - own_before) / elapsed * 100
    with_git = (all_after - all_before) / elapsed * 100
    print(f"idle over {elapsed:.0f} s (threads: {process.num_threads()})")
    print(f"cpu      {own:5.2f}% of one core (daemon)   {with_git:5.2f}% (with git)")
    print(f"rss      {peak_rss / 2**20:5.1f} MiB peak")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--poll-interval", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        daemon = start_daemon(root, args.poll_interval)
        try:
            wait_ready(root, daemon)
            time.sleep(SETTLE)
            measure(daemon, args.seconds)
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)


if __name__ == "__main__":
    main()
