"""Transactions against real bare remotes: compare-and-swap commits, never merges."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import psutil
import pytest

from tests.conftest import Fleet, git
from watcher import outbox, transaction
from watcher.config import Config, load_config
from watcher.documents import read_snapshot
from watcher.joblist import SubmitJob
from watcher.layout import JOBS_PATH
from watcher.timestamps import now_utc
from watcher.transaction import (
    Draft,
    Moot,
    OutcomeStatus,
    read_shared_snapshot,
    register_operation,
    snapshot_at,
    transact,
)
from watcher.validation import Profile


def config_for(checkout: Path, node: str) -> Config:
    return load_config(str(checkout), node)


@register_operation
@dataclass(frozen=True)
class AppendNote:
    """A test operation: append a note record to the jobs document's metadata."""

    name: ClassVar[str] = "test-note"
    text: str

    def apply(self, draft: Draft) -> str | Moot:
        jobs = draft.read(JOBS_PATH, {"jobs": []})
        notes = jobs.setdefault("metadata", {}).setdefault("notes", [])
        if self.text in notes:
            return Moot(f"note {self.text} is already there")
        notes.append(self.text)
        draft.write(JOBS_PATH, jobs)
        draft.result = len(notes)
        return f"note {self.text}"

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text}


@dataclass
class PeerWritesFirst:
    """Before our first push, a peer's transaction lands: our push is rejected."""

    name: ClassVar[str] = "test-peer-first"
    peer: Config
    applied: int = 0

    def apply(self, draft: Draft) -> str | Moot:
        self.applied += 1
        if self.applied == 1:
            assert transact(self.peer, AppendNote("peer")).is_done
        return AppendNote("mine").apply(draft)

    def to_json(self) -> dict[str, Any]:
        return {}


@dataclass
class PeersKeepWritingFirst:
    """Before each of our first `rounds` pushes, a peer's transaction lands."""

    name: ClassVar[str] = "test-peers-first"
    peer: Config
    rounds: int
    applied: int = 0

    def apply(self, draft: Draft) -> str | Moot:
        self.applied += 1
        if self.applied <= self.rounds:
            assert transact(self.peer, AppendNote(f"peer{self.applied}")).is_done
        return AppendNote("mine").apply(draft)

    def to_json(self) -> dict[str, Any]:
        return {}


def notes_on_remote(fleet: Fleet) -> list[str]:
    return json.loads(fleet.remote_file(JOBS_PATH)).get("metadata", {}).get("notes", [])


def test_transaction_commits_on_the_remote_tip_with_trailers_and_identity(
    fleet: Fleet,
) -> None:
    checkout = fleet.clone("build2")

    outcome = transact(config_for(checkout, "build2"), AppendNote("one"))

    assert outcome.status is OutcomeStatus.DONE and outcome.result == 1
    assert fleet.remote_log()[0] == outcome.commit
    message = git("log", "-1", "--format=%an <%ae>%n%B", cwd=fleet.remote)
    assert message.startswith("build2 <build2@build-watcher.invalid>\nbuild2: note one")
    assert "Build-Watcher-Server: build2" in message
    assert "Build-Watcher-Operation: test-note" in message


def test_rejected_push_is_retried_on_the_new_tip(fleet: Fleet) -> None:
    mine = config_for(fleet.clone("build1"), "build1")
    peer = config_for(fleet.clone("build2"), "build2")
    operation = PeerWritesFirst(peer)

    outcome = transact(mine, operation)

    assert outcome.status is OutcomeStatus.DONE
    assert outcome.attempts == 2 and operation.applied == 2
    assert notes_on_remote(fleet) == ["peer", "mine"]
    assert git("rev-list", "--merges", "main", cwd=fleet.remote) == ""


def test_a_write_outlasts_many_refusals_within_its_deadline(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transaction, "BACKOFF_CAP", 0.02)
    mine = config_for(fleet.clone("build1"), "build1")
    operation = PeersKeepWritingFirst(config_for(fleet.clone("build2"), "build2"), 20)

    outcome = transact(mine, operation)

    assert outcome.status is OutcomeStatus.DONE and outcome.attempts == 21
    assert notes_on_remote(fleet)[-1] == "mine" and len(notes_on_remote(fleet)) == 21


def test_a_write_refused_until_its_deadline_fails_with_the_reason_unqueued(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transaction, "BACKOFF_CAP", 0.02)
    checkout = fleet.clone("build1")
    mine = replace(config_for(checkout, "build1"), transaction_timeout=1.0)
    peer = config_for(fleet.clone("build2"), "build2")

    outcome = transact(mine, PeersKeepWritingFirst(peer, 10_000))

    assert outcome.status is OutcomeStatus.FAILED and outcome.attempts > 1
    assert "refused" in outcome.reason and "transaction_timeout" in outcome.reason
    assert not outbox.has_entries(mine)
    assert "mine" not in notes_on_remote(fleet)


def test_operation_that_no_longer_applies_is_moot_and_pushes_nothing(
    fleet: Fleet,
) -> None:
    config = config_for(fleet.clone("build1"), "build1")
    transact(config, AppendNote("once"))
    before = fleet.remote_log()

    outcome = transact(config, AppendNote("once"))

    assert outcome.status is OutcomeStatus.MOOT
    assert outcome.reason == "note once is already there"
    assert fleet.remote_log() == before


def test_hand_edits_in_the_checkout_survive_and_the_checkout_is_left_alone(
    fleet: Fleet,
) -> None:
    checkout = fleet.clone("build1")
    edited = checkout / JOBS_PATH
    edited.write_text('{"jobs": [], "hand": "edit"}\n')
    head = git("rev-parse", "HEAD", cwd=checkout)

    outcome = transact(config_for(checkout, "build1"), AppendNote("x"))

    assert outcome.is_done
    assert edited.read_text() == '{"jobs": [], "hand": "edit"}\n'
    assert git("rev-parse", "HEAD", cwd=checkout) == head
    assert git("rev-parse", "origin/main", cwd=checkout).strip() == outcome.commit


def test_clean_checkout_is_fast_forwarded_and_untracked_files_kept(
    fleet: Fleet,
) -> None:
    checkout = fleet.clone("build1")
    (checkout / "notes.txt").write_text("mine\n")

    outcome = transact(config_for(checkout, "build1"), AppendNote("x"))

    assert git("rev-parse", "HEAD", cwd=checkout).strip() == outcome.commit
    assert "x" in (checkout / JOBS_PATH).read_text()
    assert (checkout / "notes.txt").read_text() == "mine\n"


def test_local_commits_keep_the_checkout_where_it_is(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")
    (checkout / "README").write_text("local\n")
    git("add", "README", cwd=checkout)
    git("commit", "-qm", "local work", cwd=checkout)
    head = git("rev-parse", "HEAD", cwd=checkout)

    outcome = transact(config_for(checkout, "build1"), AppendNote("x"))

    assert outcome.is_done and git("rev-parse", "HEAD", cwd=checkout) == head


def test_a_broken_document_at_the_tip_is_never_written_over(fleet: Fleet) -> None:
    fleet.push_by_hand(JOBS_PATH, '{"jobs": [\n<<<<<<< HEAD\n')
    config = config_for(fleet.clone("build1"), "build1")

    outcome = transact(config, AppendNote("x"))

    assert outcome.status is OutcomeStatus.FAILED
    assert JOBS_PATH in outcome.reason and "refusing to write over it" in outcome.reason
    assert fleet.remote_file(JOBS_PATH).startswith('{"jobs": [\n<<<<<<<')


def test_the_refusal_places_the_fault_as_path_line_column_then_json_path(
    fleet: Fleet,
) -> None:
    fleet.push_by_hand(JOBS_PATH, '{\n  "jobs": [\n,]\n}\n')

    outcome = transact(config_for(fleet.clone("build1"), "build1"), AppendNote("x"))

    assert outcome.reason.startswith(f"{JOBS_PATH}:3:1: $: expected a value")


@dataclass(frozen=True)
class WriteInvalidJob:
    name: ClassVar[str] = "test-invalid"

    def apply(self, draft: Draft) -> str | Moot:
        draft.write(JOBS_PATH, {"jobs": [{"id": "job_x", "status": "exploded"}]})
        return "write nonsense"

    def to_json(self) -> dict[str, Any]:
        return {}


def test_a_write_that_breaks_the_strict_profile_is_refused(fleet: Fleet) -> None:
    config = config_for(fleet.clone("build1"), "build1")
    before = fleet.remote_log()

    outcome = transact(config, WriteInvalidJob())

    assert outcome.status is OutcomeStatus.FAILED
    assert "coordination/jobs.json" in outcome.reason
    assert fleet.remote_log() == before


def test_every_write_passes_strict_validation_and_history_is_linear(
    fleet: Fleet,
) -> None:
    config = config_for(fleet.clone("build1"), "build1")
    for number in range(3):
        transact(config, SubmitJob(type="build", branch="main", priority=number + 1))

    for commit in git("rev-list", "main", cwd=fleet.remote).split():
        snapshot = read_snapshot(fleet.remote, commit, profile=Profile.STRICT)
        assert snapshot.problems == {}, commit
    assert git("rev-list", "--merges", "main", cwd=fleet.remote) == ""


def test_a_long_running_process_keeps_its_git_children_bounded(fleet: Fleet) -> None:
    config = config_for(fleet.clone("build1"), "build1")
    me = psutil.Process()
    most_children = 0

    for number in range(200):
        outcome = transact(config, AppendNote(f"n{number}"))
        assert outcome.is_done
        most_children = max(most_children, len(me.children(recursive=True)))

    assert most_children == 0
    assert len(notes_on_remote(fleet)) == 200


def test_shared_snapshot_reads_the_remote_tracking_tip_without_fetching(
    fleet: Fleet,
) -> None:
    reader = fleet.clone("reader")
    writer = config_for(fleet.clone("build1"), "build1")
    transact(writer, AppendNote("unseen"))

    snapshot = read_shared_snapshot(config_for(reader, "reader"))

    assert snapshot.commit == git("rev-parse", "origin/main", cwd=reader).strip()
    assert "unseen" not in json.dumps(snapshot.documents)


def test_a_command_that_writes_needs_a_server_id(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")
    (checkout / ".build_server_id").unlink()

    with pytest.raises(Exception, match="no server id"):
        transact(load_config(str(checkout)), AppendNote("x"))


LEGACY_JOB = {
    "id": "job_old",
    "type": "build",
    "status": "completed",
    "priority": 2,
    "branch": "main",
    "created_at": "2025-11-04 10:00",
}


def push_jobs(fleet: Fleet, jobs: list[dict[str, Any]]) -> None:
    seeder = fleet.clone("person")
    (seeder / JOBS_PATH).write_text(json.dumps({"jobs": jobs}, indent=2) + "\n")
    git("commit", "-qam", "jobs written by hand", cwd=seeder)
    git("push", "-q", "origin", "main", cwd=seeder)


@dataclass(frozen=True)
class EditJob:
    """A test operation: set one field of one job record, or append a record."""

    name: ClassVar[str] = "test-edit-job"
    job_id: str
    field: str
    value: Any
    append: dict[str, Any] | None = None

    def apply(self, draft: Draft) -> str | Moot:
        document = draft.read(JOBS_PATH)
        for job in document["jobs"]:
            if job["id"] == self.job_id:
                job[self.field] = self.value
        if self.append is not None:
            document["jobs"].append(self.append)
        draft.write(JOBS_PATH, document)
        return f"edit {self.job_id}"

    def to_json(self) -> dict[str, Any]:
        return {}


def jobs_on_remote(fleet: Fleet) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = json.loads(fleet.remote_file(JOBS_PATH))["jobs"]
    return jobs


def test_a_write_next_to_untouched_legacy_records_is_accepted(fleet: Fleet) -> None:
    push_jobs(fleet, [LEGACY_JOB])
    config = config_for(fleet.clone("build1"), "build1")

    outcome = transact(config, SubmitJob(type="build", branch="main"))

    assert outcome.is_done
    assert jobs_on_remote(fleet)[0] == LEGACY_JOB


def test_an_altered_legacy_record_may_keep_what_it_already_departed_in(
    fleet: Fleet,
) -> None:
    push_jobs(fleet, [LEGACY_JOB])
    config = config_for(fleet.clone("build1"), "build1")

    outcome = transact(config, EditJob("job_old", "priority", 1))

    assert outcome.is_done
    assert jobs_on_remote(fleet)[0] == {**LEGACY_JOB, "priority": 1}


def test_an_added_record_in_the_legacy_form_is_refused(fleet: Fleet) -> None:
    push_jobs(fleet, [{**LEGACY_JOB, "created_at": "2025-11-04T10:00:00Z"}])
    config = config_for(fleet.clone("build1"), "build1")
    added = {**LEGACY_JOB, "id": "job_new"}

    outcome = transact(config, EditJob("none", "priority", 1, append=added))

    assert outcome.status is OutcomeStatus.FAILED
    assert "$.jobs[1].created_at" in outcome.reason


def test_a_retyped_value_in_a_record_counts_as_a_change(fleet: Fleet) -> None:
    strict_job = {**LEGACY_JOB, "created_at": "2025-11-04T10:00:00Z", "priority": 1}
    push_jobs(fleet, [strict_job])
    config = config_for(fleet.clone("build1"), "build1")
    added = {**strict_job, "id": "job_new"}

    # True == 1 in Python, yet the record is no longer the same JSON.
    outcome = transact(config, EditJob("job_old", "priority", True, append=added))

    assert outcome.status is OutcomeStatus.FAILED
    assert "$.jobs[0].priority" in outcome.reason


@dataclass(frozen=True)
class ScribbleOnTheBase:
    """A test operation that changes what it read in every way it can."""

    name: ClassVar[str] = "test-scribble"

    def apply(self, draft: Draft) -> str | Moot:
        document = draft.read(JOBS_PATH)
        document["jobs"][0]["priority"] = 9
        document["jobs"].clear()
        draft.write(JOBS_PATH, document)
        document["jobs"].append({**LEGACY_JOB, "id": "job_late"})
        return "scribble"

    def to_json(self) -> dict[str, Any]:
        return {}


def test_an_operation_never_changes_the_documents_it_was_given(fleet: Fleet) -> None:
    push_jobs(fleet, [LEGACY_JOB])
    config = config_for(fleet.clone("build1"), "build1")
    tip = git("rev-parse", "main", cwd=fleet.remote).strip()
    base = snapshot_at(config, tip)
    draft = Draft(base, "build1", now_utc())

    ScribbleOnTheBase().apply(draft)

    assert base.documents[JOBS_PATH] == {"jobs": [LEGACY_JOB]}
    assert draft.changed_documents()[JOBS_PATH]["jobs"][0]["id"] == "job_late"
