from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from watcher.documents import Snapshot
from watcher.events import Event, EventKind, event_id
from watcher.layout import MESSAGES_PATH
from watcher.problems import Problem, Severity
from watcher.progress import Progress, progress_path


def received(subject: str = "msg_1", sender: str = "build2") -> Event:
    record = {"id": subject, "from": sender, "to": "all", "subject": "hi"}
    kind = EventKind.MESSAGE_RECEIVED
    identity = event_id(kind, subject, sender, "hi")
    return Event(
        kind, identity, "c1", MESSAGES_PATH, subject, record, None, actor=sender
    )


def test_every_kind_has_a_dotted_name() -> None:
    assert all("." in kind.value for kind in EventKind)
    assert EventKind("job.queued") is EventKind.JOB_QUEUED
    assert len(EventKind) == 16


def test_events_are_frozen_and_hashable() -> None:
    event = received()

    with pytest.raises(dataclasses.FrozenInstanceError):
        event.subject = "other"  # type: ignore[misc]
    assert len({event, received()}) == 1


def test_ids_depend_on_the_state_not_on_the_argument_order_of_mappings() -> None:
    kind = EventKind.CONFIG_CHANGED

    assert event_id(kind, "p", {"a": 1, "b": 2}) == event_id(
        kind, "p", {"b": 2, "a": 1}
    )
    assert event_id(kind, "p", {"a": 1}) != event_id(kind, "p", {"a": 2})
    assert event_id(kind, "p") != event_id(EventKind.JOB_QUEUED, "p")


def test_an_event_survives_its_json_form() -> None:
    problem = Problem("x.json", "bad", Severity.ERROR, 3, 4, "$.a", "syntax")
    invalid = Event(
        EventKind.DOCUMENT_INVALID,
        "evt_1",
        "c1",
        "x.json",
        "x.json",
        None,
        None,
        problem,
    )
    for event in (received(), invalid):
        text = json.dumps(event.to_json())
        assert Event.from_json(json.loads(text)) == event


def test_the_json_form_is_a_copy_that_leaves_the_record_alone() -> None:
    event = received()

    data = event.to_json()
    data["record"]["subject"] = "changed"

    assert event.record is not None and event.record["subject"] == "hi"
    assert data["kind"] == "message.received"
    assert data["actor"] == "build2"


def test_progress_admits_a_message_only_once() -> None:
    progress = Progress("build1")

    first = progress.admit([received("m1"), received("m2")])
    second = progress.admit([received("m1"), received("m3")])

    assert [e.subject for e in first] == ["m1", "m2"]
    assert [e.subject for e in second] == ["m3"]


def test_progress_survives_a_restart(tmp_path: Path) -> None:
    path = progress_path(tmp_path, "build1")
    progress = Progress.load(path, "build1")
    progress.admit([received("m1")])
    progress.record("abc123")
    progress.save()

    loaded = Progress.load(path, "build1")

    assert loaded.last_commit == "abc123"
    assert loaded.admit([received("m1")]) == []
    assert not list(tmp_path.glob(".*tmp"))


def test_a_fresh_server_starts_with_existing_messages_as_old_news() -> None:
    document = {"messages": [received("m1").record, received("m2", "build1").record]}
    progress = Progress("build1")

    progress.start_at(Snapshot("c9", {MESSAGES_PATH: document}))

    assert progress.last_commit == "c9"
    assert progress.admit([received("m1")]) == []


def test_an_unreadable_progress_file_says_how_to_recover(tmp_path: Path) -> None:
    from watcher.errors import WatcherError

    path = progress_path(tmp_path, "build1")
    path.write_text("{not json")

    with pytest.raises(WatcherError) as caught:
        Progress.load(path, "build1")
    assert "delete the file" in (caught.value.hint or "")
