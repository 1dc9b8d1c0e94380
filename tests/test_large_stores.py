"""Large message stores: a store over the size limit can be archived, and the parts
that make writes to a big store cheap do what the slow ones did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Fleet, git
from tests.test_mailbox import SERVERS, config_for, publish_servers
from tests.test_message_commands import cli, ok
from watcher import findings, recordmemory, verdicts
from watcher.documents import dump_document
from watcher.jsonload import MAX_BYTES
from watcher.layout import MESSAGES_PATH
from watcher.mailbox import ArchiveMessages
from watcher.transaction import OutcomeStatus, transact

OCTOBER = "coordination/archive/messages-2025-10.json"
NOVEMBER = "coordination/archive/messages-2025-11.json"


def read_message(number: int, month: str) -> dict[str, Any]:
    """A message every recipient has read, about 380 bytes as the product writes."""
    sender, to = SERVERS[number % 3], SERVERS[(number + 1) % 3]
    return {
        "id": f"msg_01JC{number:022d}",
        "from": sender,
        "to": to,
        "type": "info",
        "priority": "normal",
        "subject": f"Build {number} of feature/{number % 50} finished",
        "body": "All modules compiled; the package was uploaded. " * 3,
        "timestamp": f"{month}-{number % 28 + 1:02d}T{number % 24:02d}:00:00Z",
        "read": True,
        "read_by": [to],
    }


def push_store(fleet: Fleet, data: bytes) -> None:
    """Commit `data` as the message store with plain git, as a person could."""
    work = fleet.root / "seeder"
    if not work.exists():
        git("clone", "--quiet", fleet.url, str(work), cwd=fleet.root)
    git("pull", "--quiet", "--ff-only", cwd=work)
    (work / MESSAGES_PATH).write_bytes(data)
    git("commit", "--quiet", "-am", "A busy month of messages", cwd=work)
    git("push", "--quiet", "origin", "main", cwd=work)


def oversized_store() -> bytes:
    """24,000 messages over 9 MB: October's alone would not fit in one file."""
    messages = [read_message(n, "2025-10") for n in range(23_000)]
    messages += [read_message(n, "2025-11") for n in range(23_000, 24_000)]
    data = dump_document({"messages": messages})
    assert len(data) > MAX_BYTES
    return data


def remote_json(fleet: Fleet, path: str) -> Any:
    return json.loads(fleet.remote_file(path))


def test_a_store_over_the_size_limit_is_refused_until_archived(fleet: Fleet) -> None:
    publish_servers(fleet)
    push_store(fleet, oversized_store())
    checkout = fleet.clone("build1")
    send = ("send", "--to", "build2", "--subject", "hello")

    refused = cli(checkout, *send)
    archived = json.loads(
        ok(checkout, "messages", "archive", "--older-than", "1", "--format", "json")
    )
    sent = cli(checkout, *send)

    assert refused.returncode == 1
    assert "over the 8 MiB" in refused.stderr
    assert "build-watcher messages archive" in refused.stderr
    assert archived["status"] == "done"
    assert sent.returncode == 0, sent.stderr
    store = fleet.remote_file(MESSAGES_PATH).encode()
    october, november = (remote_json(fleet, p)["messages"] for p in (OCTOBER, NOVEMBER))
    assert len(store) < MAX_BYTES
    assert len(fleet.remote_file(OCTOBER).encode()) <= MAX_BYTES
    assert archived["archived"] == {OCTOBER: len(october), NOVEMBER: 1000}
    kept = [m["id"] for m in json.loads(store)["messages"]]
    every = [m["id"] for m in october + november] + kept[:-1]
    assert sorted(every) == [f"msg_01JC{n:022d}" for n in range(24_000)]


def test_an_oversized_store_that_is_also_broken_is_never_archived(
    fleet: Fleet,
) -> None:
    publish_servers(fleet)
    data = oversized_store()
    push_store(fleet, data.replace(b'"read": true', b'"read": true, "read": true', 1))

    outcome = transact(config_for(fleet, "build1"), ArchiveMessages(1))

    assert outcome.status is OutcomeStatus.FAILED
    assert "duplicate" in outcome.reason
    assert "refusing to write over it" in outcome.reason
    assert fleet.remote_file(MESSAGES_PATH).encode() == data.replace(
        b'"read": true', b'"read": true, "read": true', 1
    )


WRITTEN_VALUES: list[Any] = [
    {},
    [],
    {"a": {}, "b": [], "c": [[]], "d": [{}]},
    'quote " backslash \\ newline \n tab \t nul \x00 unit \x1f é ☃ \u2028',
    [0, -1, 2**53, 10**30, 1.5, -0.0, 1e16, 1e-7, 3.141592653589793],
    [True, False, None],
    {"nested": {"deeper": [1, {"x": ["y", []]}]}, "after": "z"},
    (1, 2),
    {"tuple": (1, [2])},
    {1: "integer key"},
    [float("nan"), float("inf")],
]


@pytest.mark.parametrize("value", WRITTEN_VALUES, ids=range(len(WRITTEN_VALUES)))
def test_documents_are_written_exactly_as_the_standard_library_writes(
    value: Any,
) -> None:
    expected = json.dumps(value, indent=2, ensure_ascii=False) + "\n"

    assert dump_document(value) == expected.encode("utf-8")


def test_records_equal_as_json_are_unchanged_and_a_retyped_number_is_not() -> None:
    old = [{"id": "a", "n": 1}, {"id": "b", "n": 2}, {"id": "c", "n": 1}]
    reordered = {"n": 2, "id": "b"}
    retyped = {"id": "c", "n": True}  # equal to old[2] in Python, not in JSON
    new = [old[0], reordered, retyped, {"id": "d"}]

    found = recordmemory.unchanged_records(old, new)

    assert retyped == old[2]
    assert found == [0, 1]


def test_unchanged_records_are_found_where_they_moved() -> None:
    old = [{"id": f"m{n}", "body": "x" * (n % 7)} for n in range(1000)]
    new = [dict(record) for record in old[300:]]
    new[10]["body"] = "changed"
    new.insert(500, {"id": "fresh"})

    found = recordmemory.unchanged_records(old, new)

    assert found == [i for i in range(len(new)) if i not in (10, 500)]


def test_valid_records_are_remembered_between_processes(tmp_path: Path) -> None:
    recordmemory.RECORDS.clear()
    verdicts.VERDICTS.load(tmp_path)
    record = read_message(7, "2025-10")
    assert findings.record_findings(*record_of_messages(), record) == ()

    verdicts.VERDICTS.save(tmp_path)
    recordmemory.RECORDS.clear()
    saved = verdicts.read_digests(tmp_path / verdicts.FILE_NAME)
    recordmemory.RECORDS.seed_valid(saved)

    key = recordmemory.record_key(*record_of_messages(), record)
    assert key is not None and recordmemory.RECORDS.get(key) == ()
    assert len(saved) == 1


def test_a_verdicts_file_of_other_code_or_torn_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / verdicts.FILE_NAME
    verdicts.write_digests(path, [b"x" * recordmemory.DIGEST_SIZE])
    assert verdicts.read_digests(path) == [b"x" * recordmemory.DIGEST_SIZE]

    path.write_bytes(path.read_bytes() + b"torn")
    assert verdicts.read_digests(path) == []
    path.write_bytes(b"build-watcher valid records 0123\n" + b"x" * 16)
    assert verdicts.read_digests(path) == []


def record_of_messages() -> tuple[Any, Any, str]:
    from watcher.layout import DocumentKind
    from watcher.schemas import Profile

    return DocumentKind.MESSAGES, Profile.LEGACY, "messages"
