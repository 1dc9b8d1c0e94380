"""Benchmark: diffing a large message store, and replaying the corpus history.

    .venv/bin/python bench/events.py [--corpus CLONE] [--messages 10000]

Prints:
- the time to diff a messages.json of N messages against the same with one more
  (the diff alone, on parsed documents), then with parsing and validation of the
  new version (in a process that has seen no record, and in one that validated
  the previous version, as a following daemon has), then end to end through git
  (read_snapshot + diff_snapshots);
- the replay of the whole corpus history into events: commits per second, with a
  cold blob cache, and the peak memory of that replay (tracemalloc, in a second
  run, since tracing slows it down; and the process's maximum resident size).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from watcher.diff import diff_documents, diff_snapshots  # noqa: E402
from watcher.documents import dump_document, read_snapshot  # noqa: E402
from watcher.history import replay  # noqa: E402
from watcher.layout import MESSAGES_PATH  # noqa: E402
from watcher.recordmemory import RECORDS  # noqa: E402
from watcher.validation import Profile, check_document  # noqa: E402

BUNDLE = ROOT.parent / "shared" / "corpus" / "history.bundle"


def message(number: int) -> dict[str, Any]:
    return {
        "id": f"msg_01JC{number:022d}",
        "from": f"build{number % 4 + 1}",
        "to": "all" if number % 5 == 0 else f"build{(number + 1) % 4 + 1}",
        "type": "info",
        "subject": f"Build {number} finished",
        "body": f"Build {number} of ExternalNew finished in {number % 600} s.",
        "timestamp": f"2025-11-{number % 28 + 1:02d}T{number % 24:02d}:00:00Z",
        "read_by": [],
    }


def timed(action: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Median wall time in milliseconds over `repeat` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def bench_diff(count: int) -> None:
    records = [message(n) for n in range(count + 1)]
    old = {"messages": records[:-1]}
    data = dump_document({"messages": records})
    # Parsed separately, as two versions read from git are: no shared objects.
    new = json.loads(data)
    me = "build3"

    diff_ms, events = timed(
        lambda: diff_documents(MESSAGES_PATH, old, new, me), repeat=21
    )
    cold_ms = statistics.median(validate(data, None) for _ in range(3))
    parse_ms = statistics.median(validate(data, dump_document(old)) for _ in range(5))
    print(f"messages.json of {count} messages ({len(data) / 1e6:.1f} MB), one added:")
    kinds = [event.kind.value for event in events]  # type: ignore[attr-defined]
    print(f"  diff alone (parsed documents):     {diff_ms:8.1f} ms -> {kinds}")
    print(f"  parse + validate, nothing seen:    {cold_ms:8.1f} ms")
    print(f"  parse + validate the new version:  {parse_ms:8.1f} ms")
    print("    (the previous version validated before, as the daemon has)")
    print(f"  together:                          {diff_ms + parse_ms:8.1f} ms")
    bench_through_git(old, new)


def validate(data: bytes, seen: bytes | None) -> float:
    """Milliseconds to validate `data` in a process that remembers no record, or
    only those of `seen`."""
    RECORDS.clear()
    if seen is not None:
        check_document(MESSAGES_PATH, seen, Profile.LEGACY)
    start = time.perf_counter()
    check_document(MESSAGES_PATH, data, Profile.LEGACY)
    return (time.perf_counter() - start) * 1000


def bench_through_git(old: dict[str, Any], new: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch)
        for value, label in ((old, "before"), (new, "after")):
            target = repo / MESSAGES_PATH
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(dump_document(value))
            _git(repo, "add", "-A")
            _git(repo, "commit", "--quiet", "-m", label)
        before = read_snapshot(repo, "HEAD~1")

        def catch_up() -> object:
            return diff_snapshots(before, read_snapshot(repo, "HEAD", before), "build3")

        total_ms, _ = timed(catch_up, repeat=5)
    print(f"  end to end from git (read + diff): {total_ms:8.1f} ms")


def _git(repo: Path, *args: str) -> None:
    if not (repo / ".git").exists():
        subprocess.run(["git", "init", "--quiet", str(repo)], check=True)
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run(["git", *identity, *args], cwd=repo, check=True)


def bench_replay(corpus: Path) -> None:
    start = time.perf_counter()
    commits = events = 0
    for step in replay(corpus, None):
        commits += 1
        events += len(step.events)
    elapsed = time.perf_counter() - start
    tracemalloc.start()
    for _ in replay(corpus, None):
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"corpus replay: {commits} commits, {events} events in {elapsed:.2f} s")
    print(f"  {commits / elapsed:,.0f} commits/s (cold blob cache, legacy validation)")
    print(f"  peak traced memory {peak / 1e6:.1f} MB; process max RSS {rss:.0f} MB")


def corpus_clone(explicit: str | None, scratch: Path) -> Path:
    if explicit:
        return Path(explicit)
    target = scratch / "corpus"
    subprocess.run(["git", "clone", "--quiet", str(BUNDLE), str(target)], check=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", help="an existing clone of the corpus bundle")
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    bench_diff(args.messages)
    with tempfile.TemporaryDirectory() as scratch:
        bench_replay(corpus_clone(args.corpus, Path(scratch)))
    print(json.dumps({"python": sys.version.split()[0]}))


if __name__ == "__main__":
    main()
