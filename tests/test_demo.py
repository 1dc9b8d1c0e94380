"""`build-watcher demo` run for real, as a newcomer runs it, and its checks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from watcher.demopromises import Plan, check_promises
from watcher.demotimeline import Timeline
from watcher.documents import Snapshot
from watcher.events import Event, EventKind
from watcher.judgement import SavedView, save_view

pytestmark = pytest.mark.slow
DEMO_DEADLINE = 120


@dataclass(frozen=True)
class DemoRun:
    returncode: int
    stdout: str
    stderr: str
    scratch: Path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """One run of the demo, its temporary directory made under a scratch TMPDIR."""
    scratch = tmp_path_factory.mktemp("tmpdir")
    env = {**os.environ, "TMPDIR": str(scratch)}
    completed = subprocess.run(
        [sys.executable, "-m", "watcher", "demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=DEMO_DEADLINE,
        check=False,
    )
    return DemoRun(completed.returncode, completed.stdout, completed.stderr, scratch)


def test_the_demo_exits_0_having_kept_every_promise(demo: DemoRun) -> None:
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "every promise kept" in demo.stdout
    assert demo.stdout.count("[ok] ") == 5
    assert "FAILED" not in demo.stdout


def test_the_timeline_shows_the_log_commands_lines(demo: DemoRun) -> None:
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  "
    for kind in ("server.joined", "job.queued", "job.claimed", "job.finished"):
        assert re.search(stamp + r"[0-9a-f]{8}  " + re.escape(kind), demo.stdout)
    assert re.search(
        r"job\.requeued .* requeued for attempt 2 \(was build\d\)", demo.stdout
    )
    assert re.search(r"message\.received .* -> build\d: ping", demo.stdout)
    assert re.search(r"message\.received .* -> build\d: Re: ping", demo.stdout)
    assert re.search(r"operator -> all: hello fleet", demo.stdout)


def test_the_killed_server_is_seen_stale_then_back_by_both_others(
    demo: DemoRun,
) -> None:
    [victim] = re.findall(r"== (build\d) killed", demo.stdout)
    stale = re.findall(rf"(build\d)\s+server\.stale\s+{victim}", demo.stdout)
    back = re.findall(rf"(build\d)\s+server\.recovered\s+{victim}", demo.stdout)
    others = {"build1", "build2", "build3"} - {victim}
    assert set(stale) == others
    assert set(back) == others


def test_the_demo_ends_with_the_fleet_view_and_leaves_nothing_behind(
    demo: DemoRun,
) -> None:
    assert re.search(r"Fleet \w+ as seen by build\d", demo.stdout)
    assert "Jobs: 4 completed" in demo.stdout
    assert list(demo.scratch.iterdir()) == []
    assert _processes_under(demo.scratch) == []


def test_keep_refuses_a_directory_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("mine\n")
    completed = subprocess.run(
        [sys.executable, "-m", "watcher", "demo", "--keep", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 2
    assert "not an empty directory" in completed.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["something"]


def test_a_job_claimed_twice_for_one_attempt_breaks_the_promise() -> None:
    timeline = Timeline(Path("/nonexistent"), lambda line: None)
    claim = {"id": "job_A", "attempt": 1, "assigned_to": "build1"}
    for commit in ("c1", "c2"):
        timeline.events.append(_event(EventKind.JOB_CLAIMED, "job_A", claim, commit))
    timeline.snapshot = Snapshot("c2", {"coordination/jobs.json": {"jobs": [claim]}})
    checks = check_promises(timeline, Plan(slow_job="job_A"), ["build1", "build2"])
    by_promise = {check.promise: check for check in checks}
    claimed = by_promise[
        "every job was claimed exactly once per attempt, and finished once"
    ]
    assert not claimed.ok
    assert "job_A #1" in claimed.detail
    assert not any(check.ok for check in checks)


def test_a_liveness_change_shows_as_a_log_line_naming_who_saw_it(
    tmp_path: Path,
) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    recent = [
        {"kind": "server.stale", "subject": "build1", "when": "2026-01-02T03:04:05Z"}
    ]
    save_view(tmp_path / "liveness.json", SavedView("build2", when, 3.0, {}, recent))
    timeline = Timeline(tmp_path / "remote.git", lambda line: None)

    lines = timeline.follow_view("build2", tmp_path / "liveness.json")
    again = timeline.follow_view("build2", tmp_path / "liveness.json")

    [(moment, line)] = lines
    assert moment == when
    assert line.split() == [
        *("2026-01-02", "03:04:05", "build2", "server.stale", "build1"),
        *("build1", "went", "silent"),
    ]
    assert again == []
    assert timeline.noticed("build2", "server.stale", "build1")


def _event(
    kind: EventKind, subject: str, record: dict[str, object], commit: str
) -> Event:
    return Event(
        kind, f"evt_{commit}", commit, "coordination/jobs.json", subject, record, None
    )


def _processes_under(root: Path) -> list[int]:
    found = []
    for process in psutil.process_iter(["cwd"]):
        cwd = process.info.get("cwd")
        if cwd and Path(cwd).is_relative_to(root):
            found.append(process.pid)
    return found
