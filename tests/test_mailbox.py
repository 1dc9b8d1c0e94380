"""Message writes as transactions on a real bare remote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Fleet, git
from watcher.config import Config, load_config
from watcher.documents import read_snapshot
from watcher.errors import UsageError
from watcher.layout import MESSAGES_PATH
from watcher.mailbox import ArchiveMessages, MarkRead, SendMessage, inbox
from watcher.messages import message_records
from watcher.timestamps import is_strict_timestamp
from watcher.transaction import OutcomeStatus, rebuild_operation, transact

SERVERS = ("build1", "build2", "build3")


def publish_servers(fleet: Fleet, servers: tuple[str, ...] = SERVERS) -> None:
    """Give each server a status file on the remote, as a joined server has."""
    work = fleet.root / "publisher"
    git("clone", "--quiet", fleet.url, str(work), cwd=fleet.root)
    for server in servers:
        status = work / server / "status.json"
        status.parent.mkdir()
        status.write_text(json.dumps({"server": server, "status": "idle"}) + "\n")
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "Servers join", cwd=work)
    git("push", "--quiet", "origin", "main", cwd=work)


def config_for(fleet: Fleet, node: str) -> Config:
    checkout = fleet.checkouts.get(node) or fleet.clone(node)
    return load_config(str(checkout), node, None, environ={})


def remote_documents(fleet: Fleet) -> dict[str, Any]:
    return dict(read_snapshot(fleet.remote, "main").documents)


def remote_messages(fleet: Fleet) -> list[dict[str, Any]]:
    return message_records(remote_documents(fleet).get(MESSAGES_PATH))


@pytest.fixture
def joined(fleet: Fleet) -> Fleet:
    publish_servers(fleet)
    return fleet


def test_send_appends_a_strict_message_and_returns_its_id(joined: Fleet) -> None:
    outcome = transact(config_for(joined, "build1"), SendMessage("build2", "hello"))

    [record] = remote_messages(joined)
    assert outcome.status is OutcomeStatus.DONE
    assert outcome.result == record["id"]
    assert record["id"].startswith("msg_")
    assert is_strict_timestamp(record["timestamp"])
    assert (record["from"], record["to"], record["type"]) == (
        "build1",
        "build2",
        "info",
    )
    assert (record["read"], record["read_by"]) == (False, [])


def test_send_to_an_unknown_server_lists_the_known_ones(joined: Fleet) -> None:
    with pytest.raises(UsageError, match="build1, build2, build3"):
        transact(config_for(joined, "build1"), SendMessage("build9", "hello"))

    assert remote_messages(joined) == []


def test_the_sender_of_a_message_may_be_answered_before_it_joined(
    joined: Fleet,
) -> None:
    asked = transact(config_for(joined, "newcomer"), SendMessage("build1", "hi"))

    answer = SendMessage("newcomer", "hello", reply_to=asked.result)
    outcome = transact(config_for(joined, "build1"), answer)

    assert outcome.status is OutcomeStatus.DONE
    with pytest.raises(UsageError, match="unknown recipient 'newcomer'"):
        transact(config_for(joined, "build1"), SendMessage("newcomer", "hello"))


def test_reply_to_an_unknown_message_is_refused(joined: Fleet) -> None:
    with pytest.raises(UsageError, match="--reply-to msg_gone"):
        transact(
            config_for(joined, "build1"),
            SendMessage("build2", "x", reply_to="msg_gone"),
        )


def test_send_to_all_is_valid_before_any_server_joined(fleet: Fleet) -> None:
    outcome = transact(config_for(fleet, "build1"), SendMessage("all", "hello"))

    assert outcome.status is OutcomeStatus.DONE


def test_a_retried_send_lands_once(joined: Fleet) -> None:
    config = config_for(joined, "build1")
    operation = SendMessage("build2", "once")

    first = transact(config, operation)
    again = transact(config, operation)

    assert (first.status, again.status) == (OutcomeStatus.DONE, OutcomeStatus.MOOT)
    assert len(remote_messages(joined)) == 1


def test_a_credential_is_refused_unless_allowed() -> None:
    body = "db_password = 'S3cr3t-value'"

    with pytest.raises(UsageError, match="body line 1, column 4") as refused:
        SendMessage("build2", "creds", body)

    assert "S3cr3t" not in str(refused.value)
    assert SendMessage("build2", "creds", body, allow_secret=True).body == body


def test_operations_rebuild_from_their_json() -> None:
    send = SendMessage("all", "hi", "body", "request", reply_to="msg_1")
    read = MarkRead(("msg_1", "msg_2"))
    archive = ArchiveMessages(30)

    for operation in (send, read, archive):
        payload = json.loads(json.dumps(operation.to_json()))
        module = type(operation).__module__
        assert rebuild_operation(operation.name, module, payload) == operation


def test_reading_a_direct_message_sets_read_by_and_the_seed_flag(joined: Fleet) -> None:
    sent = transact(config_for(joined, "build2"), SendMessage("build1", "hi"))

    outcome = transact(config_for(joined, "build1"), MarkRead((sent.result,)))

    [record] = remote_messages(joined)
    assert outcome.status is OutcomeStatus.DONE
    assert (record["read_by"], record["read"]) == (["build1"], True)


def test_broadcast_read_by_one_server_stays_unread_for_the_others(
    joined: Fleet,
) -> None:
    sent = transact(config_for(joined, "build2"), SendMessage("all", "deploy"))

    transact(config_for(joined, "build1"), MarkRead((sent.result,)))

    documents = remote_documents(joined)
    assert [e.message.id for e in inbox(documents, "build1")] == []
    assert [e.message.id for e in inbox(documents, "build3")] == [sent.result]
    assert remote_messages(joined)[0]["read"] is False


def test_reading_twice_is_moot(joined: Fleet) -> None:
    sent = transact(config_for(joined, "build2"), SendMessage("build1", "hi"))
    config = config_for(joined, "build1")
    transact(config, MarkRead((sent.result,)))

    again = transact(config, MarkRead((sent.result,)))

    assert again.status is OutcomeStatus.MOOT


def test_reading_an_unknown_or_foreign_message_is_refused(joined: Fleet) -> None:
    sent = transact(config_for(joined, "build2"), SendMessage("build3", "private"))
    config = config_for(joined, "build1")

    with pytest.raises(UsageError, match="no message msg_nope"):
        transact(config, MarkRead(("msg_nope",)))
    with pytest.raises(UsageError, match="not for build1"):
        transact(config, MarkRead((sent.result,)))


def seed_messages(fleet: Fleet, records: list[dict[str, Any]]) -> Path:
    work = fleet.checkouts.get("publisher") or fleet.root / "publisher"
    git("pull", "--quiet", "origin", "main", cwd=work)
    (work / MESSAGES_PATH).write_text(json.dumps({"messages": records}, indent=2))
    git("commit", "--quiet", "-am", "Old messages", cwd=work)
    git("push", "--quiet", "origin", "main", cwd=work)
    return work


def old_message(number: int, month: str, **fields: Any) -> dict[str, Any]:
    record = {
        "id": f"msg_old_{number}",
        "from": "build2",
        "to": "build1",
        "type": "info",
        "subject": f"old {number}",
        "body": "",
        "timestamp": f"2025-{month}-0{number % 9 + 1} 10:00",
        "read": True,
    }
    record.update(fields)
    return record


def test_archive_moves_messages_read_by_all_into_monthly_files(joined: Fleet) -> None:
    seed_messages(
        joined,
        [
            old_message(1, "10"),
            old_message(2, "11"),
            old_message(3, "10", read=False),
            old_message(4, "10", to="all", read_by=["build1", "build3"]),
            old_message(5, "10", to="all", read_by=["build1"]),
        ],
    )
    transact(config_for(joined, "build1"), SendMessage("build2", "new"))

    outcome = transact(config_for(joined, "build3"), ArchiveMessages(30))

    documents = remote_documents(joined)
    october = "coordination/archive/messages-2025-10.json"
    november = "coordination/archive/messages-2025-11.json"
    assert outcome.status is OutcomeStatus.DONE
    assert outcome.result == {october: 2, november: 1}
    assert [r["id"] for r in message_records(documents[october])] == [
        "msg_old_1",
        "msg_old_4",
    ]
    kept = [r["id"] for r in message_records(documents[MESSAGES_PATH])]
    assert kept[:2] == ["msg_old_3", "msg_old_5"]
    assert len(kept) + 3 == 6


def test_archived_legacy_records_are_written_in_the_strict_form(joined: Fleet) -> None:
    seed_messages(joined, [old_message(1, "10"), old_message(2, "10")])

    transact(config_for(joined, "build3"), ArchiveMessages(30))

    october = "coordination/archive/messages-2025-10.json"
    [first, second] = message_records(remote_documents(joined)[october])
    assert first["timestamp"] == "2025-10-02T10:00:00Z"
    assert (first["id"], first["read_by"], first["read"]) == (
        "msg_old_1",
        ["build1"],
        True,
    )
    assert second["id"] == "msg_old_2"


def test_archived_messages_are_still_listed_with_all(joined: Fleet) -> None:
    seed_messages(joined, [old_message(1, "10"), old_message(2, "10", read=False)])
    transact(config_for(joined, "build3"), ArchiveMessages(30))

    documents = remote_documents(joined)
    listed = [e.message.id for e in inbox(documents, "build1", include_read=True)]

    assert listed == ["msg_old_1", "msg_old_2"]
    assert [e.message.id for e in inbox(documents, "build1")] == ["msg_old_2"]


def test_archive_with_nothing_to_move_is_moot(joined: Fleet) -> None:
    transact(config_for(joined, "build1"), SendMessage("build2", "new"))

    outcome = transact(config_for(joined, "build1"), ArchiveMessages(30))

    assert outcome.status is OutcomeStatus.MOOT
