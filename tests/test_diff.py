from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import git
from watcher.diff import diff_documents, diff_snapshots
from watcher.documents import Snapshot, read_snapshot
from watcher.events import EventKind
from watcher.layout import (
    BUILD_CONFIG_PATH,
    JOBS_PATH,
    LOCKS_PATH,
    MESSAGES_PATH,
)
from watcher.problems import Problem

K = EventKind


def job(job_id: str = "job_1", **fields: Any) -> dict[str, Any]:
    record = {
        "id": job_id,
        "type": "build",
        "branch": "main",
        "status": "queued",
        "assigned_to": None,
        "attempt": 1,
        "submitted_by": "build2",
        "created_at": "2025-11-04T10:00:00Z",
    }
    record.update(fields)
    return record


def message(msg_id: str = "msg_1", **fields: Any) -> dict[str, Any]:
    record = {
        "id": msg_id,
        "from": "build2",
        "to": "build1",
        "subject": "hello",
        "body": "text",
        "timestamp": "2025-11-04T10:00:00Z",
        "read_by": [],
    }
    record.update(fields)
    return record


def jobs(*records: dict[str, Any]) -> dict[str, Any]:
    return {"jobs": list(records)}


def messages(*records: dict[str, Any]) -> dict[str, Any]:
    return {"messages": list(records)}


def lock(holder: str | None, epoch: int = 1) -> dict[str, Any]:
    return {
        "locked_by": holder,
        "locked_at": "2025-11-04T10:00:00Z" if holder else None,
        "expires_at": "2025-11-04T10:05:00Z" if holder else None,
        "epoch": epoch,
    }


def kinds_of(path: str, old: Any, new: Any, me: str | None = "build1") -> list[str]:
    return [event.kind.value for event in diff_documents(path, old, new, me, "c1")]


def test_a_new_queued_job_is_queued() -> None:
    events = diff_documents(JOBS_PATH, jobs(), jobs(job()), "build1", "c1")

    assert [event.kind for event in events] == [K.JOB_QUEUED]
    assert events[0].subject == "job_1"
    assert events[0].actor == "build2"
    assert events[0].commit == "c1"


def test_a_claim_is_claimed_by_its_assignee() -> None:
    running = job(
        status="running", assigned_to="build1", started_at="2025-11-04T10:01:00Z"
    )

    events = diff_documents(JOBS_PATH, jobs(job()), jobs(running), None, "c2")

    assert [(event.kind, event.actor) for event in events] == [
        (K.JOB_CLAIMED, "build1")
    ]
    assert events[0].previous == job()


def test_completed_and_failed_jobs_are_finished() -> None:
    running = job(status="running", assigned_to="build1")
    for status in ("completed", "failed", "success"):
        done = job(status=status, assigned_to="build1")
        assert kinds_of(JOBS_PATH, jobs(running), jobs(done)) == ["job.finished"]


def test_a_cancelled_job_is_cancelled() -> None:
    assert kinds_of(JOBS_PATH, jobs(job()), jobs(job(status="cancelled"))) == [
        "job.cancelled"
    ]


def test_a_running_job_put_back_in_the_queue_is_requeued() -> None:
    running = job(status="running", assigned_to="build1")
    requeued = job(status="queued", attempt=2)

    assert kinds_of(JOBS_PATH, jobs(running), jobs(requeued)) == ["job.requeued"]


def test_a_raised_attempt_is_a_requeue_even_without_a_status_change() -> None:
    assert kinds_of(JOBS_PATH, jobs(job()), jobs(job(attempt=2))) == ["job.requeued"]


def test_a_job_taken_over_by_a_peer_is_requeued_then_claimed() -> None:
    mine = job(status="running", assigned_to="build1")
    theirs = job(status="running", assigned_to="build2", attempt=2)

    assert kinds_of(JOBS_PATH, jobs(mine), jobs(theirs)) == [
        "job.requeued",
        "job.claimed",
    ]


def test_a_job_that_appears_running_was_queued_then_claimed() -> None:
    running = job(status="running", assigned_to="build1")

    assert kinds_of(JOBS_PATH, jobs(), jobs(running)) == ["job.queued", "job.claimed"]


def test_legacy_job_statuses_and_missing_attempts_are_understood() -> None:
    legacy = {"id": "job_1761779789", "status": "pending", "type": "build"}
    building = dict(legacy, status="in_progress", assigned_to="build1")

    assert kinds_of(JOBS_PATH, jobs(legacy), jobs(building)) == ["job.claimed"]


def test_job_fields_that_do_not_change_its_state_yield_nothing() -> None:
    assert kinds_of(JOBS_PATH, jobs(job()), jobs(job(priority=1, note="x"))) == []


def test_a_removed_job_yields_nothing() -> None:
    assert kinds_of(JOBS_PATH, jobs(job()), jobs()) == []


def test_the_same_change_has_the_same_id_whatever_the_commit() -> None:
    first = diff_documents(JOBS_PATH, jobs(), jobs(job()), "build1", "c1")
    second = diff_documents(JOBS_PATH, jobs(), jobs(job()), "build2", "c9")

    assert first[0].id == second[0].id
    assert first[0].id.startswith("evt_")


def test_each_claim_of_a_job_has_its_own_id() -> None:
    first = job(status="running", assigned_to="build1", attempt=1)
    second = job(status="running", assigned_to="build2", attempt=2)
    ids = {
        event.id
        for old, new in ((job(), first), (job(attempt=2), second))
        for event in diff_documents(JOBS_PATH, jobs(old), jobs(new), None)
    }

    assert len(ids) == 2


def test_a_lock_taken_is_acquired_and_given_up_is_released() -> None:
    free = {"locks": {"deploy": lock(None)}}
    held = {"locks": {"deploy": lock("build1")}}

    acquired = diff_documents(LOCKS_PATH, free, held, None)
    released = diff_documents(LOCKS_PATH, held, free, None)

    assert [(e.kind, e.subject, e.actor) for e in acquired] == [
        (K.LOCK_ACQUIRED, "deploy", "build1")
    ]
    assert [(e.kind, e.actor) for e in released] == [(K.LOCK_RELEASED, "build1")]


def test_a_change_of_holder_is_a_release_then_an_acquisition() -> None:
    old = {"locks": {"deploy": lock("build1", epoch=1)}}
    new = {"locks": {"deploy": lock("build2", epoch=2)}}

    assert kinds_of(LOCKS_PATH, old, new) == ["lock.released", "lock.acquired"]


def test_a_renewed_lease_yields_nothing() -> None:
    old = {"locks": {"deploy": lock("build1")}}
    renewed = copy.deepcopy(old)
    renewed["locks"]["deploy"]["expires_at"] = "2025-11-04T10:10:00Z"

    assert kinds_of(LOCKS_PATH, old, renewed) == []


def test_a_message_to_me_is_received() -> None:
    events = diff_documents(MESSAGES_PATH, messages(), messages(message()), "build1")

    assert [(e.kind, e.subject, e.actor) for e in events] == [
        (K.MESSAGE_RECEIVED, "msg_1", "build2")
    ]


def test_a_broadcast_is_received_by_all_but_its_sender() -> None:
    broadcast = messages(message(to="all"))

    assert kinds_of(MESSAGES_PATH, messages(), broadcast, "build3") == [
        "message.received"
    ]
    assert kinds_of(MESSAGES_PATH, messages(), broadcast, "build2") == []


def test_messages_for_others_are_not_received_unless_observing_all() -> None:
    other = messages(message(to="build3"))

    assert kinds_of(MESSAGES_PATH, messages(), other, "build1") == []
    assert kinds_of(MESSAGES_PATH, messages(), other, None) == ["message.received"]


def test_a_message_readdressed_to_me_is_received_then() -> None:
    before = messages(message(to="build3"))
    after = messages(message(to="all"))

    assert kinds_of(MESSAGES_PATH, before, after, "build1") == ["message.received"]


def test_a_reader_added_to_read_by_is_a_read() -> None:
    before = messages(message())
    after = messages(message(read_by=["build1"]))

    events = diff_documents(MESSAGES_PATH, before, after, "build2")

    assert [(e.kind, e.actor) for e in events] == [(K.MESSAGE_READ, "build1")]


def test_a_legacy_read_flag_turning_true_is_a_read_by_the_addressee() -> None:
    before = messages({**message(), "read": False})
    after = messages({**message(), "read": True})

    events = diff_documents(MESSAGES_PATH, before, after, "build2")

    assert [(e.kind, e.actor) for e in events] == [(K.MESSAGE_READ, "build1")]


def test_a_rewritten_message_is_the_same_message() -> None:
    """Legacy rewrites cut timestamps to the minute and retype quotes in bodies."""
    old = message(timestamp="2025-10-29T18:21:11Z", body="Build1's")
    new = message(timestamp="2025-10-29 18:21", body="Build1\u2019s")

    assert kinds_of(MESSAGES_PATH, messages(old), messages(new)) == []


def test_reused_message_ids_are_different_messages() -> None:
    first = message(subject="one")
    second = message(subject="two")

    events = diff_documents(
        MESSAGES_PATH, messages(first), messages(first, second), "build1"
    )

    assert [(e.kind, e.record["subject"]) for e in events if e.record] == [
        (K.MESSAGE_RECEIVED, "two")
    ]


def test_new_messages_come_out_oldest_first() -> None:
    late = message("msg_b", timestamp="2025-11-04T12:00:00Z")
    early = message("msg_a", timestamp="2025-11-04 09:00")

    events = diff_documents(MESSAGES_PATH, messages(), messages(late, early), "build1")

    assert [event.subject for event in events] == ["msg_a", "msg_b"]


def test_a_config_change_is_reported_but_reformatting_is_not() -> None:
    old = {"build": {"maven_opts": "-Xmx4g"}}
    new = {"build": {"maven_opts": "-Xmx8g"}}

    assert kinds_of(BUILD_CONFIG_PATH, old, new) == ["config.changed"]
    assert kinds_of(BUILD_CONFIG_PATH, old, json.loads(json.dumps(old))) == []


def test_a_status_change_is_reported_in_both_dialects() -> None:
    for field in ("server", "server_id"):
        old = {field: "build1", "status": "idle", "timestamp": "2025-11-04 10:00"}
        new = {field: "build1", "status": "building", "timestamp": "2025-11-04 10:01"}
        events = diff_documents("build1/status.json", old, new, "build2")
        assert [(e.kind, e.subject) for e in events] == [
            (K.SERVER_STATUS_CHANGED, "build1")
        ]


def test_heartbeats_and_unknown_documents_yield_nothing() -> None:
    assert kinds_of("build1/heartbeat.json", {"timestamp": 1}, {"timestamp": 2}) == []
    assert kinds_of("coordination/message_stats.json", {"a": 1}, {"a": 2}) == []


def snapshot(commit: str, documents: dict[str, Any], **kw: Any) -> Snapshot:
    blobs = {path: f"blob-{commit}-{path}" for path in documents}
    blobs.update(kw.pop("blobs", {}))
    return Snapshot(commit, documents, blobs, kw.pop("problems", {}))


def test_a_new_server_directory_is_a_joined_server_without_a_status_change() -> None:
    status = {"server": "build3", "status": "idle"}
    before = snapshot("c1", {JOBS_PATH: jobs()})
    after = snapshot("c2", {JOBS_PATH: jobs(), "build3/status.json": status})

    events = diff_snapshots(before, after, "build1")

    assert [(e.kind, e.subject, e.record) for e in events] == [
        (K.SERVER_JOINED, "build3", status)
    ]


def test_an_invalid_version_is_reported_once_and_the_last_valid_stays() -> None:
    problem = Problem(MESSAGES_PATH, "unquoted string", line=7, json_path="$")
    valid = messages(message())
    before = snapshot("c1", {MESSAGES_PATH: valid})
    broken = Snapshot(
        "c2",
        {MESSAGES_PATH: valid},
        {MESSAGES_PATH: "bad"},
        {MESSAGES_PATH: (problem,)},
    )
    still_broken = Snapshot("c3", broken.documents, broken.blobs, broken.problems)

    events = diff_snapshots(before, broken, "build1")

    assert [(e.kind, e.path, e.problem) for e in events] == [
        (K.DOCUMENT_INVALID, MESSAGES_PATH, problem)
    ]
    assert diff_snapshots(broken, still_broken, "build1") == []


def test_a_snapshot_against_itself_yields_nothing() -> None:
    documents = {JOBS_PATH: jobs(job()), MESSAGES_PATH: messages(message())}
    current = snapshot("c1", documents)

    assert diff_snapshots(current, current, "build1") == []


def test_reformatting_and_line_endings_yield_nothing(tmp_path: Path) -> None:
    """The real path: documents read from git commits, not from dicts in memory."""
    repo = tmp_path / "repo"
    git("init", "--quiet", str(repo), cwd=tmp_path)
    target = repo / MESSAGES_PATH
    target.parent.mkdir(parents=True)
    document = messages(message(), message("msg_2", to="all"))
    target.write_text(json.dumps(document, indent=2) + "\n")
    git("add", "-A", cwd=repo)
    git("commit", "--quiet", "-m", "first", cwd=repo)
    reordered = {"messages": list(reversed(document["messages"]))}
    target.write_bytes(json.dumps(reordered, indent=4).replace("\n", "\r\n").encode())
    git("commit", "--quiet", "-am", "reformat", cwd=repo)

    first = read_snapshot(repo, "HEAD~1")
    second = read_snapshot(repo, "HEAD", previous=first)

    assert first.blobs != second.blobs
    assert diff_snapshots(first, second, "build1") == []


# Property tests: records drawn at random, arrays shuffled.
ids = st.sampled_from([f"r{n}" for n in range(8)])
servers = st.sampled_from(["build1", "build2", "build3"])
job_records = st.builds(
    job,
    ids,
    status=st.sampled_from(["queued", "running", "completed", "failed", "cancelled"]),
    assigned_to=st.none() | servers,
    attempt=st.integers(1, 3),
)
message_records = st.builds(
    message,
    ids,
    to=servers | st.just("all"),
    read_by=st.lists(servers, unique=True, max_size=2),
)


def unique_by_id(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list({record["id"]: record for record in records}.values())


lock_records = st.builds(
    lambda name, holder, epoch: {"name": name, **lock(holder, epoch)},
    ids,
    st.none() | servers,
    st.integers(1, 3),
)
documents_pair = st.tuples(
    st.lists(job_records, max_size=6).map(unique_by_id),
    st.lists(job_records, max_size=6).map(unique_by_id),
    st.lists(message_records, max_size=6).map(unique_by_id),
    st.lists(message_records, max_size=6).map(unique_by_id),
    st.lists(lock_records, max_size=4),
    st.lists(lock_records, max_size=4),
)


def as_snapshots(
    commit: str,
    job_list: list[dict[str, Any]],
    message_list: list[dict[str, Any]],
    lock_list: list[dict[str, Any]] | None = None,
) -> Snapshot:
    """Locks are an object keyed by name: shuffling the list reorders its keys."""
    named = {record["name"]: record for record in lock_list or []}
    locks = {"locks": {name: dict(record) for name, record in named.items()}}
    return snapshot(
        commit,
        {
            JOBS_PATH: jobs(*job_list),
            MESSAGES_PATH: messages(*message_list),
            LOCKS_PATH: locks,
        },
    )


def reordered(records: list[dict[str, Any]], rng: Any) -> list[dict[str, Any]]:
    """The same locks, keyed in another order (the last record of a name wins)."""
    named = list({record["name"]: record for record in records}.values())
    rng.shuffle(named)
    return named


@settings(max_examples=150, deadline=None)
@given(documents_pair, st.randoms(use_true_random=False), servers | st.none())
def test_shuffling_record_arrays_yields_the_same_events(
    pair: tuple[list[Any], ...], rng: Any, me: str | None
) -> None:
    old_jobs, new_jobs, old_messages, new_messages, old_locks, new_locks = pair
    before = as_snapshots("c1", old_jobs, old_messages, old_locks)
    after = as_snapshots("c2", new_jobs, new_messages, new_locks)
    shuffled = [list(records) for records in pair]
    for records in shuffled:
        rng.shuffle(records)

    expected = diff_snapshots(before, after, me)
    actual = diff_snapshots(
        as_snapshots("c1", shuffled[0], shuffled[2], reordered(old_locks, rng)),
        as_snapshots("c2", shuffled[1], shuffled[3], reordered(new_locks, rng)),
        me,
    )

    assert [e.to_json() for e in actual] == [e.to_json() for e in expected]


@settings(max_examples=100, deadline=None)
@given(documents_pair, servers | st.none())
def test_any_document_diffed_against_a_copy_of_itself_yields_nothing(
    pair: tuple[list[Any], ...], me: str | None
) -> None:
    current = as_snapshots("c1", pair[0], pair[2], pair[4])
    copied = Snapshot("c2", copy.deepcopy(dict(current.documents)), current.blobs)

    assert diff_snapshots(current, copied, me) == []
