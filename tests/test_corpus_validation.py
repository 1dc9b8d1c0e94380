"""The real coordination history as input: every version it holds, checked once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from watcher.documents import dump_document
from watcher.layout import kind_of
from watcher.problems import Severity
from watcher.revisions import range_versions, read_blobs
from watcher.validation import DocumentResult, Profile, check_document

STATS = "coordination/message_stats.json"


@pytest.fixture(scope="module")
def versions(corpus_repo: Path) -> dict[tuple[str, str], bytes]:
    """Every distinct (path, blob) any commit of the history introduced."""
    found = {(v.path, v.blob) for v in range_versions(corpus_repo, "main")}
    contents = read_blobs(corpus_repo, {blob for _, blob in found})
    return {(path, blob): contents[blob] for path, blob in found}


@pytest.fixture(scope="module")
def legacy(
    versions: dict[tuple[str, str], bytes],
) -> dict[tuple[str, str], DocumentResult]:
    return {
        key: check_document(key[0], data, Profile.LEGACY)
        for key, data in versions.items()
    }


def parses(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def test_the_history_holds_about_3240_versions(
    versions: dict[tuple[str, str], bytes],
) -> None:
    assert 3200 <= len(versions) <= 3300


def test_every_version_that_parses_passes_legacy(
    versions: dict[tuple[str, str], bytes],
    legacy: dict[tuple[str, str], DocumentResult],
) -> None:
    failing = [
        (key, result.errors[0].message)
        for key, result in legacy.items()
        if parses(versions[key]) and not result.is_valid
    ]
    assert failing == []


def test_only_the_known_faults_fail(
    legacy: dict[tuple[str, str], DocumentResult],
) -> None:
    failing = Counter(
        path for (path, _), result in legacy.items() if not result.is_valid
    )
    assert failing == {STATS: 16, "build2/heartbeat.json": 1}


def test_unparseable_message_stats_are_caught_at_the_unquoted_value(
    legacy: dict[tuple[str, str], DocumentResult],
) -> None:
    faults = [
        r.problems[0]
        for (path, _), r in legacy.items()
        if path == STATS and not r.is_valid
    ]
    assert len(faults) == 16
    for fault in faults:
        assert (fault.rule, fault.line, fault.column) == ("syntax", 7, 28)
        assert fault.message.startswith("unquoted string `2025-10-29T")
        assert fault.message.endswith("`: JSON needs double quotes")


def test_the_empty_heartbeat_is_caught(
    legacy: dict[tuple[str, str], DocumentResult],
) -> None:
    [empty] = [
        r
        for (p, _), r in legacy.items()
        if p == "build2/heartbeat.json" and not r.is_valid
    ]
    [fault] = empty.problems
    assert (fault.rule, fault.line, fault.column, fault.message) == (
        "empty",
        1,
        1,
        "file is empty",
    )


def test_files_without_a_schema_are_noted_not_failed(
    legacy: dict[tuple[str, str], DocumentResult],
) -> None:
    noted = {
        p
        for (p, _), r in legacy.items()
        if r.problems and r.problems[0].rule == "no-schema"
    }
    assert {
        "shared/file_registry.json",
        "coordination/unread_messages_status.json",
    } <= noted
    assert all(kind_of(path) is None for path in noted)


def test_legacy_warns_of_every_departure_the_history_holds(
    legacy: dict[tuple[str, str], DocumentResult],
) -> None:
    warned = Counter(
        (path.split("/")[-1], problem.rule)
        for (path, _), result in legacy.items()
        for problem in result.problems
        if problem.severity is Severity.WARNING
    )
    assert warned[("messages.json", "format")] > 5000  # "2025-11-04 20:45", no zone
    assert warned[("messages.json", "required")] == 47  # messages without `type`
    assert warned[("status.json", "enum")] == 1  # status "testing"
    assert warned[("status.json", "format")] == 1  # "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    assert warned[("health_dashboard.json", "type")] == 1  # servers as an object


def test_strict_rejects_zoneless_timestamps_in_real_messages(
    versions: dict[tuple[str, str], bytes],
) -> None:
    data = dump_document(real_document(versions, "coordination/messages.json"))
    result = check_document("coordination/messages.json", data, Profile.STRICT)
    zoneless = [p for p in result.errors if p.rule == "format"]
    assert zoneless, "the latest messages hold timestamps such as 2025-11-04 20:45"
    assert all(p.json_path.endswith(".timestamp") and p.line for p in zoneless)


def real_document(versions: dict[tuple[str, str], bytes], path: str) -> dict:
    latest = max((data for (p, _), data in versions.items() if p == path), key=len)
    return json.loads(latest)


def test_strict_rejects_server_id_in_a_real_status(
    versions: dict[tuple[str, str], bytes],
) -> None:
    status = real_document(versions, "build1/status.json")
    status["server_id"] = status.pop("server")
    data = dump_document(status)
    strict = check_document("build1/status.json", data, Profile.STRICT)
    assert "`server_id` is the legacy name of this field: write `server`" in {
        p.message for p in strict.errors
    }
    assert check_document("build1/status.json", data, Profile.LEGACY).is_valid


def test_strict_rejects_a_reused_id_in_real_messages(
    versions: dict[tuple[str, str], bytes],
) -> None:
    document = real_document(versions, "coordination/messages.json")
    document["messages"].append(dict(document["messages"][3]))
    data = dump_document(document)
    strict = check_document("coordination/messages.json", data, Profile.STRICT)
    last = len(document["messages"]) - 1
    assert f"$.messages[{last}].id" in {
        p.json_path for p in strict.errors if p.rule == "unique-id"
    }


def test_record_by_record_validation_finds_what_whole_validation_finds(
    versions: dict[tuple[str, str], bytes],
) -> None:
    from watcher.findings import document_findings, schema_findings
    from watcher.layout import DocumentKind
    from watcher.schemas import validator

    messages = sorted(
        d for (p, _), d in versions.items() if p.endswith("/messages.json")
    )
    for data in messages[::10]:
        value = json.loads(data)
        for profile in Profile:
            whole = schema_findings(validator(DocumentKind.MESSAGES, profile), value)
            split = document_findings(DocumentKind.MESSAGES, profile, value)
            assert sorted(map(repr, split)) == sorted(map(repr, whole))
