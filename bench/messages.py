"""Whole-process timings of `send` and `inbox` on a large message store.

Builds a real bare remote whose `coordination/messages.json` holds N messages
(default 20,000) between four servers, mostly read, clones it, and times complete
`build-watcher` processes from start to exit: `inbox` (text and JSON), `inbox
--all`, and `send` (fetch, rebuild, validate, commit, push), also right after
another server sent (so that the tip, and one record, are new to the sender: the
usual case in a fleet). It does so for a store in the strict form and for one
where a third of the timestamps have the legacy `YYYY-MM-DD HH:MM` shape. Prints
min, median and max of each.

    .venv/bin/python bench/messages.py [--messages 20000] [--runs 9]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SERVERS = ("build1", "build2", "build3", "build4")
ME = "build1"
PEER = "build2"


def git(*args: str, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def make_messages(
    count: int, unread: int, legacy_share: float, seed: int = 7
) -> list[dict[str, Any]]:
    """A busy fleet's store; `legacy_share` of it in the old `YYYY-MM-DD HH:MM`."""
    rng = random.Random(seed)
    start = 1_760_000_000
    messages = []
    for number in range(count):
        sender = rng.choice(SERVERS)
        to = rng.choice([*(s for s in SERVERS if s != sender), "all"])
        moment = time.gmtime(start + number * 37)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", moment)
        if rng.random() < legacy_share:
            stamp = time.strftime("%Y-%m-%d %H:%M", moment)
        body = "Build log summary: " + "all modules compiled; " * rng.randrange(1, 6)
        messages.append(
            {
                "id": f"msg_{number:05d}",
                "from": sender,
                "to": to,
                "type": rng.choice(["info", "info", "request", "warning"]),
                "subject": f"Build {number} of branch feature/{rng.randrange(50)}",
                "body": body,
                "timestamp": stamp,
                "read": to != "all",
                "read_by": [s for s in SERVERS if s != sender and to in (s, "all")],
            }
        )
    for record in rng.sample(messages, unread):
        record["read"], record["read_by"] = False, []
    return messages


def make_fleet(root: Path, count: int, unread: int, legacy_share: float) -> Path:
    """A bare remote with the store and four servers; returns ME's checkout."""
    remote, seed = root / "remote.git", root / "seed"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote), cwd=root)
    git("init", "--quiet", "--initial-branch=main", str(seed), cwd=root)
    for server in SERVERS:
        (seed / server).mkdir()
        status = {
            "server": server,
            "status": "idle",
            "timestamp": "2025-11-01T00:00:00Z",
        }
        (seed / server / "status.json").write_text(json.dumps(status, indent=2) + "\n")
    (seed / "coordination").mkdir()
    store = {"messages": make_messages(count, unread, legacy_share)}
    (seed / "coordination" / "messages.json").write_text(json.dumps(store, indent=2))
    git("add", "-A", cwd=seed)
    git(
        "-c",
        "user.name=bench",
        "-c",
        "user.email=bench@example.invalid",
        "commit",
        "--quiet",
        "-m",
        "Seed a large message store",
        cwd=seed,
    )
    git("push", "--quiet", remote.as_uri(), "main", cwd=seed)
    checkout = root / ME
    git("clone", "--quiet", remote.as_uri(), str(checkout), cwd=root)
    return checkout


def time_command(
    command: list[str], runs: int, before: list[str] | None = None
) -> list[float]:
    """Wall seconds of `runs` complete processes, after one unmeasured warm-up;
    `before`, when given, runs (unmeasured) ahead of each."""
    timings = []
    for number in range(runs + 1):
        if before:
            run_checked(before)
        started = time.perf_counter()
        run_checked(command)
        elapsed = time.perf_counter() - started
        if number:
            timings.append(elapsed)
    return timings


def run_checked(command: list[str]) -> None:
    completed = subprocess.run(command, capture_output=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"{command} failed: {completed.stderr.decode()}")


def report(label: str, timings: list[float]) -> None:
    median = statistics.median(timings) * 1000
    low, high = min(timings) * 1000, max(timings) * 1000
    print(f"{label:<28} median {median:7.1f} ms   min {low:7.1f}   max {high:7.1f}")


def run_scenario(options: argparse.Namespace, legacy_share: float) -> None:
    program = str(Path(sys.executable).with_name("build-watcher"))
    with tempfile.TemporaryDirectory(prefix="bench-messages-") as scratch:
        checkout = make_fleet(
            Path(scratch), options.messages, options.unread, legacy_share
        )
        size = (checkout / "coordination" / "messages.json").stat().st_size
        print(
            f"\n{options.messages} messages ({size / 1e6:.1f} MB), "
            f"{legacy_share:.0%} with legacy timestamps"
        )
        base = [program, "-q", "--repo", str(checkout), "--node", ME]
        for label, extra in (
            ("inbox", ["inbox"]),
            ("inbox --format json", ["inbox", "--format", "json"]),
            ("inbox --all --format json", ["inbox", "--all", "--format", "json"]),
        ):
            report(label, time_command([*base, *extra], options.runs))
        send = [*base, "send", "--to", "build2", "--subject", "bench", "--body", "x"]
        report("send", time_command(send, options.send_runs))
        peer = peer_send(program, checkout)
        report("send after a peer's send", time_command(send, options.send_runs, peer))


def peer_send(program: str, checkout: Path) -> list[str]:
    """A send from another server's checkout: the next send's tip is new to ME."""
    peer = checkout.with_name(PEER)
    remote = checkout.parent / "remote.git"
    git("clone", "--quiet", remote.as_uri(), str(peer), cwd=checkout.parent)
    return [
        *(program, "-q", "--repo", str(peer), "--node", PEER),
        *("send", "--to", ME, "--subject", "peer", "--body", "y"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--unread", type=int, default=50)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--send-runs", type=int, default=5)
    parser.add_argument(
        "--legacy-share",
        type=float,
        action="append",
        help="share of messages with legacy timestamps (repeatable; default: 0, 0.33)",
    )
    options = parser.parse_args()
    report("python -c pass", time_command([sys.executable, "-c", "pass"], options.runs))
    for share in options.legacy_share or [0.0, 0.33]:
        run_scenario(options, share)


if __name__ == "__main__":
    main()
