"""The merge driver: record-wise three-way merges that never write conflict markers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import git
from watcher.layout import JOBS_PATH, LOCKS_PATH, MESSAGES_PATH
from watcher.mergedriver import (
    install_driver,
    is_driver_installed,
    merge_documents,
    uninstall_driver,
)
from watcher.validation import Profile, check_value

STATUSES = ("queued", "running", "completed", "failed", "cancelled")
TIMES = st.sampled_from(
    ["2026-01-02T03:04:05Z", "2026-01-02T04:00:00Z", "2026-02-01T00:00:00Z"]
)


@st.composite
def jobs(draw: st.DrawFn, prefix: str) -> dict[str, Any]:
    number = draw(st.integers(0, 5))
    status = draw(st.sampled_from(STATUSES))
    job: dict[str, Any] = {
        "id": f"job_{prefix}{number}",
        "type": "build",
        "priority": draw(st.integers(1, 10)),
        "status": status,
        "attempt": draw(st.integers(1, 3)),
        "created_at": draw(TIMES),
        "assigned_to": None,
    }
    if status != "queued":
        job.update(assigned_to=draw(st.sampled_from(["build1", "build2"])))
        job.update(started_at=draw(TIMES))
    return job


def unique(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({record["id"]: record for record in records}.values())


@st.composite
def job_versions(draw: st.DrawFn) -> tuple[Any, Any, Any]:
    """A base queue, and two sides that each keep, change, drop and add jobs."""
    base = unique(draw(st.lists(jobs("b"), max_size=5)))

    def side(prefix: str) -> list[dict[str, Any]]:
        changed = [
            {**draw(jobs("b")), "id": job["id"]} if draw(st.booleans()) else job
            for job in base
        ]
        dropped = [job for job in changed if draw(st.integers(0, 4))]
        return unique(dropped + draw(st.lists(jobs(prefix), max_size=4)))

    return {"jobs": base}, {"jobs": side("o")}, {"jobs": side("t")}


def ids(document: dict[str, Any], key: str) -> list[str]:
    return [record["id"] for record in document[key]]


def added(base: dict[str, Any], side: dict[str, Any], key: str) -> set[str]:
    return set(ids(side, key)) - set(ids(base, key))


@settings(max_examples=300, deadline=None)
@given(job_versions())
def test_a_merge_of_two_valid_queues_is_valid_and_keeps_every_added_job(
    versions: tuple[Any, Any, Any],
) -> None:
    base, ours, theirs = versions
    assert not check_value(JOBS_PATH, ours, Profile.STRICT)
    assert not check_value(JOBS_PATH, theirs, Profile.STRICT)

    merged = merge_documents(JOBS_PATH, base, ours, theirs).value

    assert not [p for p in check_value(JOBS_PATH, merged, Profile.STRICT) if p.is_error]
    merged_ids = ids(merged, "jobs")
    assert len(merged_ids) == len(set(merged_ids))
    assert added(base, ours, "jobs") | added(base, theirs, "jobs") <= set(merged_ids)


@settings(max_examples=200, deadline=None)
@given(job_versions())
def test_merging_with_an_unchanged_side_gives_the_other_side(
    versions: tuple[Any, Any, Any],
) -> None:
    base, ours, _theirs = versions

    assert merge_documents(JOBS_PATH, base, ours, base).value == ours
    assert merge_documents(JOBS_PATH, base, base, ours).value == ours


@st.composite
def message_versions(draw: st.DrawFn) -> tuple[Any, Any, Any]:
    def message(ident: str) -> dict[str, Any]:
        return {
            "id": ident,
            "from": "build1",
            "to": "all",
            "type": "info",
            "subject": "s",
            "body": "b",
            "timestamp": draw(TIMES),
            "read_by": sorted(draw(st.sets(st.sampled_from(["build2", "build3"])))),
        }

    base = [message(f"msg_b{n}") for n in range(draw(st.integers(0, 3)))]

    def side(prefix: str) -> list[dict[str, Any]]:
        reread = [{**m, "read_by": sorted({*m["read_by"], prefix})} for m in base]
        new = [message(f"msg_{prefix}{n}") for n in range(draw(st.integers(0, 3)))]
        return reread + new

    return {"messages": base}, {"messages": side("o")}, {"messages": side("t")}


@settings(max_examples=200, deadline=None)
@given(message_versions())
def test_messages_merge_as_a_union_with_read_state_from_both_sides(
    versions: tuple[Any, Any, Any],
) -> None:
    base, ours, theirs = versions

    merged = merge_documents(MESSAGES_PATH, base, ours, theirs).value

    assert not [
        p for p in check_value(MESSAGES_PATH, merged, Profile.STRICT) if p.is_error
    ]
    assert set(ids(ours, "messages")) | set(ids(theirs, "messages")) == set(
        ids(merged, "messages")
    )
    for message in merged["messages"]:
        if message["id"].startswith("msg_b"):
            assert {"o", "t"} <= set(message["read_by"])


def test_the_more_advanced_job_wins_and_the_clash_is_reported() -> None:
    base = {"jobs": [{"id": "job_1", "status": "queued", "attempt": 1}]}
    ours = {"jobs": [{"id": "job_1", "status": "running", "attempt": 1}]}
    theirs = {"jobs": [{"id": "job_1", "status": "queued", "attempt": 2}]}

    result = merge_documents(JOBS_PATH, base, ours, theirs)

    assert result.value == theirs
    assert result.notes == [
        "coordination/jobs.json jobs: job_1 changed on both sides; "
        "kept theirs (attempt/state (2, 0) > (1, 1))"
    ]


def test_the_lock_with_the_higher_epoch_wins() -> None:
    base = {"locks": {"deploy": {"locked_by": None, "epoch": 2}}}
    ours = {"locks": {"deploy": {"locked_by": "build1", "epoch": 3}}}
    theirs = {"locks": {"deploy": {"locked_by": None, "epoch": 4}, "db": {"epoch": 1}}}

    merged = merge_documents(LOCKS_PATH, base, ours, theirs).value

    assert merged == {
        "locks": {"deploy": {"locked_by": None, "epoch": 4}, "db": {"epoch": 1}}
    }


def test_other_documents_take_the_later_side_whole() -> None:
    base = {"server": "build1", "status": "idle", "timestamp": "2026-01-01T00:00:00Z"}
    ours = {**base, "status": "building", "timestamp": "2026-01-01T00:05:00Z"}
    theirs = {**base, "status": "failed", "timestamp": "2026-01-01T00:09:00Z"}

    result = merge_documents("build1/status.json", base, ours, theirs)

    assert result.value == theirs and len(result.notes) == 1


def commit_jobs(checkout: Path, jobs_list: list[dict[str, Any]], message: str) -> None:
    (checkout / JOBS_PATH).write_text(json.dumps({"jobs": jobs_list}, indent=2) + "\n")
    git("commit", "-qam", message, cwd=checkout)


def test_a_hand_merge_through_git_uses_the_driver_and_writes_no_markers(
    tmp_path: Path,
) -> None:
    checkout = tmp_path / "checkout"
    git("init", "-q", "-b", "main", str(checkout), cwd=tmp_path)
    (checkout / "coordination").mkdir()
    (checkout / JOBS_PATH).write_text('{"jobs": []}\n')
    git("add", "-A", cwd=checkout)
    git("commit", "-qm", "start", cwd=checkout)
    install_driver(checkout)
    git("checkout", "-qb", "peer", cwd=checkout)
    commit_jobs(checkout, [{"id": "job_peer", "status": "queued"}], "peer job")
    git("checkout", "-q", "main", cwd=checkout)
    commit_jobs(checkout, [{"id": "job_mine", "status": "queued"}], "my job")

    git("merge", "-q", "--no-edit", "peer", cwd=checkout)

    text = (checkout / JOBS_PATH).read_text()
    assert "<<<<<<<" not in text
    assert [job["id"] for job in json.loads(text)["jobs"]] == ["job_mine", "job_peer"]


def test_install_is_idempotent_and_uninstall_keeps_other_attributes(
    tmp_path: Path,
) -> None:
    git("init", "-q", "-b", "main", str(tmp_path / "c"), cwd=tmp_path)
    checkout = tmp_path / "c"
    attributes = checkout / ".git" / "info" / "attributes"
    attributes.write_text("*.png binary\n")

    install_driver(checkout)
    install_driver(checkout)
    assert is_driver_installed(checkout)
    assert attributes.read_text().count("merge=build-watcher") == 5

    uninstall_driver(checkout)
    assert not is_driver_installed(checkout)
    assert attributes.read_text() == "*.png binary\n"


def test_an_unparseable_side_leaves_ours_and_reports_a_conflict(tmp_path: Path) -> None:
    base, ours, theirs = (tmp_path / name for name in ("base", "ours", "theirs"))
    base.write_text('{"jobs": []}\n')
    ours.write_text('{"jobs": [{"id": "job_1"}]}\n')
    theirs.write_text('{"jobs": [\n<<<<<<< HEAD\n')
    command = [sys.executable, "-m", "watcher", "merge-driver"]

    done = subprocess.run(
        [*command, str(base), str(ours), str(theirs), JOBS_PATH],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 1
    assert ours.read_text() == '{"jobs": [{"id": "job_1"}]}\n'
    assert "left ours in place" in done.stderr


def test_a_missing_side_is_a_usage_error_naming_the_file(tmp_path: Path) -> None:
    missing = [str(tmp_path / name) for name in ("nope1", "nope2", "nope3")]
    command = [sys.executable, "-m", "watcher", "merge-driver", *missing, JOBS_PATH]

    done = subprocess.run(command, capture_output=True, text=True, check=False)

    assert done.returncode == 2
    assert f"cannot read the base (%O) file {missing[0]}" in done.stderr
    assert "internal error" not in done.stderr
