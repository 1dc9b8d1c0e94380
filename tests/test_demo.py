"""`build-watcher demo` run for real, as a newcomer runs it, and its checks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from tests.conftest import git
from watcher.demo import Demo, DemoFailed
from watcher.demofleet import FleetPaths
from watcher.demopromises import Plan, check_promises
from watcher.demotimeline import Timeline
from watcher.documents import Snapshot
from watcher.events import Event, EventKind
from watcher.judgement import SavedView, save_view

pytestmark = pytest.mark.slow
DEMO_DEADLINE = 120


def test_the_demo_keeps_its_promises_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    """One run (it takes a while), its temporary directory under a scratch TMPDIR."""
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    completed = subprocess.run(
        [sys.executable, "-m", "watcher", "demo"],
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
        timeout=DEMO_DEADLINE,
        check=False,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert_every_promise_kept(completed.stdout)
    assert_timeline_of_log_lines(completed.stdout)
    assert_victim_seen_stale_then_back(completed.stdout)
    assert re.search(r"Fleet \w+ as seen by build\d", completed.stdout)
    assert "Jobs: 4 completed" in completed.stdout
    assert list(scratch.iterdir()) == []
    assert _processes_under(scratch) == []


def assert_every_promise_kept(output: str) -> None:
    assert "every promise kept" in output
    assert output.count("[ok] ") == 5
    assert "FAILED" not in output


def assert_timeline_of_log_lines(output: str) -> None:
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  "
    for kind in ("server.joined", "job.queued", "job.claimed", "job.finished"):
        assert re.search(stamp + r"[0-9a-f]{8}  " + re.escape(kind), output), kind
    assert re.search(r"job\.requeued .* requeued for attempt 2 \(was build\d\)", output)
    assert re.search(r"message\.received .* -> build\d: ping", output)
    assert re.search(r"message\.received .* -> build\d: Re: ping", output)
    assert re.search(r"operator -> all: hello fleet", output)


def assert_victim_seen_stale_then_back(output: str) -> None:
    [victim] = re.findall(r"== (build\d) killed", output)
    stale = re.findall(rf"(build\d)\s+server\.stale\s+{victim}", output)
    back = re.findall(rf"(build\d)\s+server\.recovered\s+{victim}", output)
    others = {"build1", "build2", "build3"} - {victim}
    assert set(stale) == others
    assert set(back) == others


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


def test_a_wait_past_its_deadline_fails_the_demo_saying_what_did_not_happen(
    tmp_path: Path,
) -> None:
    paths = FleetPaths(tmp_path)
    git("init", "--quiet", "--bare", str(paths.remote), cwd=tmp_path)
    demo = Demo(paths, lambda line: None)

    with pytest.raises(DemoFailed) as failure:
        demo.wait("the takeover", lambda: False, timeout=0.3)

    assert failure.value.message == (
        "the demo failed: the takeover did not happen within 0.3 s"
    )
    assert failure.value.exit_code == 1
    assert "--keep DIR" in (failure.value.hint or "")
