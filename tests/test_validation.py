"""The bundled schemas in their two profiles, and the judgement of a change."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from watcher.documents import dump_document
from watcher.layout import DocumentKind, empty_documents
from watcher.problems import Severity
from watcher.schemas import (
    expanded_schema,
    is_utc_timestamp,
    legacy_form,
    profile_schema,
)
from watcher.validation import (
    Profile,
    check_change,
    check_document,
    check_value,
    check_value_change,
)

NOW = "2025-11-08T10:00:00Z"
SHA = "a" * 64
JOB = {
    "id": "job_01JC3Z6Q5W8M",
    "type": "build",
    "priority": 1,
    "description": "CloudStack build",
    "branch": "main",
    "commit": "d8e22ab0af7881b17ddd086bcae2a42a74bfc661",
    "status": "running",
    "assigned_to": "build1",
    "attempt": 2,
    "lease": {"holder": "build1", "acquired_at": NOW, "seconds": 180},
    "submitted_by": "build2",
    "labels": ["x86"],
    "timeout": 3600,
    "created_at": NOW,
    "started_at": NOW,
    "completed_at": None,
    "artifacts": [{"file": "engine.war", "size": 10, "sha256": SHA}],
    "cancel_requested": None,
}
MESSAGE = {
    "id": "msg_01JC3Z6Q5W8M",
    "from": "build1",
    "to": "all",
    "type": "request",
    "priority": "normal",
    "subject": "ping",
    "body": "",
    "timestamp": NOW,
    "read": False,
    "read_by": ["build2"],
    "reply_to": None,
    "automated": False,
}
WRITTEN: dict[str, Any] = {
    "coordination/jobs.json": {"jobs": [JOB]},
    "coordination/messages.json": {"messages": [MESSAGE]},
    "coordination/archive/messages-2025-11.json": {"messages": [MESSAGE]},
    "coordination/locks.json": {
        "locks": {
            "deploy": {
                "locked_by": "build1",
                "locked_at": NOW,
                "expires_at": NOW,
                "epoch": 3,
            },
            "idle": {"locked_by": None, "locked_at": None, "expires_at": None},
        }
    },
    "build1/status.json": {
        "server": "build1",
        "timestamp": NOW,
        "status": "building",
        "current_job": "job_01JC3Z6Q5W8M",
        "last_build": {
            "id": "job_01",
            "status": "completed",
            "completed_at": NOW,
            "artifacts": [{"file": "a.deb", "size": 1, "sha256": SHA}],
        },
        "system": {"cpu_usage": 3.5, "memory_used_gb": 7.1, "disk_free_gb": 25},
        "capabilities": {"job_types": ["build"], "labels": [], "cores": 8},
        "ip": "192.0.2.1",
    },
    "build1/heartbeat.json": {
        "server": "build1",
        "timestamp": NOW,
        "sequence": 12,
        "uptime_seconds": 100,
        "healthy": True,
        "status": "idle",
        "current_job": None,
    },
    "shared/health_dashboard.json": {
        "overall_status": "degraded",
        "updated_at": NOW,
        "servers": [{"server": "build1", "status": "idle", "healthy": False}],
        "history": [{"timestamp": NOW, "servers_online": 1}],
    },
}


def rules(problems: list[Any], severity: Severity = Severity.ERROR) -> list[str]:
    return [p.rule for p in problems if p.severity is severity]


def with_change(path: str, change: Any) -> bytes:
    document = copy.deepcopy(WRITTEN[path])
    change(document)
    return dump_document(document)


@pytest.mark.parametrize("kind", list(DocumentKind))
def test_every_kind_has_a_schema_valid_in_both_profiles(kind: DocumentKind) -> None:
    for profile in Profile:
        Draft202012Validator.check_schema(profile_schema(kind, profile))
        Draft202012Validator.check_schema(expanded_schema(kind, profile))


@pytest.mark.parametrize("path", sorted(WRITTEN))
def test_what_the_product_writes_is_strict(path: str) -> None:
    result = check_document(path, dump_document(WRITTEN[path]), Profile.STRICT)
    assert result.problems == []


@pytest.mark.parametrize("path", sorted(empty_documents()))
def test_a_new_repository_layout_is_strict(path: str) -> None:
    assert check_value(path, empty_documents()[path], Profile.STRICT) == []


def test_legacy_form_replaces_each_marked_subschema() -> None:
    schema = {
        "properties": {"at": {"format": "date-time", "x-legacy": {"type": "string"}}}
    }
    assert legacy_form(schema) == {"properties": {"at": {"type": "string"}}}


def test_date_time_format_is_really_checked() -> None:
    for bad in (
        "2025-11-04 20:45",
        "2025-11-04T20:45:00+01:00",
        "2025-13-01T00:00:00Z",
    ):
        data = with_change(
            "build1/heartbeat.json", lambda d, bad=bad: d.update(timestamp=bad)
        )
        result = check_document("build1/heartbeat.json", data, Profile.STRICT)
        assert rules(result.problems) == ["format"], bad
        assert "is not an RFC 3339 UTC timestamp" in result.problems[0].message


def test_utc_timestamps_with_fractions_are_strict() -> None:
    assert is_utc_timestamp("2025-10-30T15:38:05.127605Z")
    assert not is_utc_timestamp("2025-10-30t15:38:05z")
    assert not is_utc_timestamp("20251031T153435Z")


def test_timestamp_without_zone_is_a_legacy_warning_with_its_position() -> None:
    data = with_change(
        "coordination/messages.json",
        lambda d: d["messages"][0].update(timestamp="2025-11-04 20:45"),
    )
    result = check_document("coordination/messages.json", data, Profile.LEGACY)
    assert result.is_valid
    [warning] = result.problems
    assert (warning.severity, warning.rule) == (Severity.WARNING, "format")
    assert warning.json_path == "$.messages[0].timestamp"
    assert (warning.line, warning.column) == (11, 20)
    assert "migrate" in warning.hint


def test_server_id_instead_of_server_fails_strict_and_warns_in_legacy() -> None:
    def rename(document: dict[str, Any]) -> None:
        document["server_id"] = document.pop("server")

    data = with_change("build1/status.json", rename)
    strict = check_document("build1/status.json", data, Profile.STRICT)
    assert sorted(rules(strict.problems)) == ["not", "required"]
    assert any("`server_id` is the legacy name" in p.message for p in strict.problems)
    legacy = check_document("build1/status.json", data, Profile.LEGACY)
    assert legacy.is_valid and len(rules(legacy.problems, Severity.WARNING)) == 2


def test_a_document_without_either_server_field_fails_both_profiles() -> None:
    data = with_change("build1/status.json", lambda d: d.pop("server"))
    result = check_document("build1/status.json", data, Profile.LEGACY)
    assert rules(result.problems) == ["anyOf"]
    assert result.problems[0].message == "missing `server` (this server's id)"


def test_job_status_outside_the_enumeration() -> None:
    data = with_change(
        "coordination/jobs.json", lambda d: d["jobs"][0].update(status="done")
    )
    strict = check_document("coordination/jobs.json", data, Profile.STRICT)
    [problem] = strict.problems
    assert (problem.rule, problem.json_path) == ("enum", "$.jobs[0].status")
    assert '"done" is not one of "queued", "running"' in problem.message
    legacy = check_document("coordination/jobs.json", data, Profile.LEGACY)
    assert legacy.is_valid and rules(legacy.problems, Severity.WARNING) == ["enum"]


def test_duplicate_message_ids_are_reported_at_the_second_occurrence() -> None:
    def duplicate(document: dict[str, Any]) -> None:
        document["messages"].append(dict(MESSAGE, subject="again"))

    data = with_change("coordination/messages.json", duplicate)
    strict = check_document("coordination/messages.json", data, Profile.STRICT)
    [problem] = strict.problems
    assert (problem.rule, problem.json_path) == ("unique-id", "$.messages[1].id")
    assert "$.messages[0] has it too" in problem.message
    assert problem.line == 20
    legacy = check_document("coordination/messages.json", data, Profile.LEGACY)
    assert legacy.is_valid and rules(legacy.problems, Severity.WARNING) == ["unique-id"]


def test_duplicate_job_ids_fail_strict() -> None:
    data = with_change("coordination/jobs.json", lambda d: d["jobs"].append(dict(JOB)))
    result = check_document("coordination/jobs.json", data, Profile.STRICT)
    assert rules(result.problems) == ["unique-id"]


def test_unknown_fields_are_allowed_in_both_profiles() -> None:
    data = with_change(
        "coordination/jobs.json", lambda d: d["jobs"][0].update(extra=[1])
    )
    for profile in Profile:
        assert check_document("coordination/jobs.json", data, profile).problems == []


def test_a_running_job_names_its_holder() -> None:
    data = with_change(
        "coordination/jobs.json", lambda d: d["jobs"][0].pop("assigned_to")
    )
    result = check_document("coordination/jobs.json", data, Profile.STRICT)
    assert [p.message for p in result.problems] == [
        "missing required field `assigned_to`"
    ]


def test_a_held_lock_says_when_it_expires() -> None:
    data = with_change(
        "coordination/locks.json", lambda d: d["locks"]["deploy"].pop("expires_at")
    )
    result = check_document("coordination/locks.json", data, Profile.STRICT)
    assert rules(result.problems) == ["required"]
    assert result.problems[0].json_path == "$.locks.deploy"


def test_dashboard_servers_as_an_object_are_the_old_shape() -> None:
    def old_shape(document: dict[str, Any]) -> None:
        document["servers"] = {"build1": {"status": "idle", "healthy": True}}

    data = with_change("shared/health_dashboard.json", old_shape)
    strict = check_document("shared/health_dashboard.json", data, Profile.STRICT)
    assert [p.message for p in strict.problems] == ["expected array, found an object"]
    assert check_document("shared/health_dashboard.json", data, Profile.LEGACY).is_valid


def test_a_file_no_schema_covers_is_parsed_and_noted() -> None:
    result = check_document(
        "coordination/message_stats.json", b'{"a": 1}', Profile.STRICT
    )
    assert result.is_valid
    [note] = result.problems
    assert (note.severity, note.rule) == (Severity.INFO, "no-schema")


def test_a_file_no_schema_covers_still_gets_loader_faults() -> None:
    result = check_document(
        "coordination/message_stats.json", b'{"a": 1,}', Profile.STRICT
    )
    assert rules(result.problems) == ["trailing-comma"]


def test_messages_quote_values_never_whole_documents() -> None:
    result = check_document(
        "coordination/jobs.json", b'{"jobs": {"a": [1, 2]}}', Profile.STRICT
    )
    assert result.problems[0].message == "expected array, found an object"


def legacy_messages() -> dict[str, Any]:
    old = {k: v for k, v in MESSAGE.items() if k not in ("type", "read_by")}
    old["timestamp"] = "2025-11-04 20:45"
    return {"messages": [dict(old, id="msg_1"), dict(old, id="msg_2")]}


def test_change_holds_untouched_records_to_legacy() -> None:
    before = legacy_messages()
    after = copy.deepcopy(before)
    after["messages"].append(dict(MESSAGE, id="msg_3"))
    result = check_change("coordination/messages.json", dump_document(after), before)
    assert result.is_valid
    assert {p.json_path for p in result.problems} == {
        "$.messages[0]",
        "$.messages[0].timestamp",
        "$.messages[1]",
        "$.messages[1].timestamp",
    }


def test_change_holds_added_and_altered_records_to_strict() -> None:
    before = legacy_messages()
    after = copy.deepcopy(before)
    after["messages"][1]["subject"] = "edited"
    after["messages"].append(dict(MESSAGE, id="msg_3", timestamp="2025-11-04 21:00"))
    result = check_change("coordination/messages.json", dump_document(after), before)
    errors = {p.json_path for p in result.problems if p.is_error}
    assert errors == {
        "$.messages[1]",
        "$.messages[1].timestamp",
        "$.messages[2].timestamp",
    }


def test_change_refuses_a_new_record_that_reuses_an_old_id() -> None:
    before = legacy_messages()
    after = copy.deepcopy(before)
    after["messages"].insert(0, dict(MESSAGE, id="msg_2"))
    result = check_change("coordination/messages.json", dump_document(after), before)
    assert [p.rule for p in result.problems if p.is_error] == ["unique-id"]


def test_change_of_a_whole_document_kind_is_strict() -> None:
    before = copy.deepcopy(WRITTEN["build1/heartbeat.json"])
    before["timestamp"] = "2025-11-04 20:45"
    after = dict(before, uptime_seconds=5)
    result = check_change("build1/heartbeat.json", dump_document(after), before)
    assert rules(result.problems) == ["format"]


def test_change_matches_locks_by_name() -> None:
    before = {"locks": {"old": {"locked_by": "build1", "locked_at": "yesterday"}}}
    after = copy.deepcopy(before)
    after["locks"]["new"] = {"locked_by": "build2", "locked_at": NOW, "expires_at": NOW}
    result = check_change("coordination/locks.json", json.dumps(after).encode(), before)
    assert result.is_valid
    assert all(p.json_path.startswith("$.locks.old") for p in result.problems)


def test_a_new_file_is_wholly_strict() -> None:
    result = check_change(
        "coordination/messages.json", dump_document(legacy_messages()), None
    )
    assert not result.is_valid


def test_a_parsed_value_is_judged_as_a_change_too() -> None:
    before = legacy_messages()
    after = copy.deepcopy(before)
    after["messages"].append(dict(MESSAGE, id="msg_3", type="chat"))
    problems = check_value_change("coordination/messages.json", after, before)
    assert [(p.json_path, p.line) for p in problems if p.is_error] == [
        ("$.messages[2].type", 0)
    ]


def test_without_warnings_a_legacy_document_has_the_same_errors_and_no_warnings() -> (
    None
):
    store = legacy_messages()
    store["messages"].append({"id": "msg_9", "from": "build1"})
    data = dump_document(store)

    full = check_document("coordination/messages.json", data, Profile.LEGACY)
    quick = check_document(
        "coordination/messages.json", data, Profile.LEGACY, warnings=False
    )

    assert not quick.is_valid and quick.errors == full.errors
    assert [p for p in quick.problems if p.severity is Severity.WARNING] == []
    assert [p for p in full.problems if p.severity is Severity.WARNING] != []


def test_a_valid_version_remembered_by_its_blob_is_only_parsed() -> None:
    data = dump_document(legacy_messages())
    path, blob = "coordination/messages.json", "b" * 40
    first = check_document(path, data, Profile.LEGACY, warnings=False, blob=blob)

    # The same blob id stands for the same bytes: a lie here shows the shortcut.
    broken = dump_document({"messages": [{"id": "msg_1"}]})
    again = check_document(path, broken, Profile.LEGACY, warnings=False, blob=blob)
    other = check_document(path, broken, Profile.LEGACY, warnings=False, blob="c" * 40)

    assert first.is_valid and again.is_valid and not other.is_valid
    assert again.value == {"messages": [{"id": "msg_1"}]}


def test_records_of_a_valid_version_that_a_change_keeps_are_not_validated_again() -> (
    None
):
    # `before` is not really valid: what is trusted shows in what is reported.
    before = {"messages": [dict(MESSAGE, id="msg_1", to=42)]}
    after = copy.deepcopy(before)
    after["messages"].append(dict(MESSAGE, id="msg_2"))
    path = "coordination/messages.json"

    trusted = check_value_change(path, after, before, before_is_valid=True)
    judged = check_value_change(path, after, before)

    assert trusted == []
    assert [p.json_path for p in judged if p.is_error] == ["$.messages[0].to"]
