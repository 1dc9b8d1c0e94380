"""Message queries on plain documents, legacy shapes included."""

from __future__ import annotations

from typing import Any

from watcher import messages
from watcher.layout import MESSAGES_PATH


def message(number: int, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": f"msg_{number}",
        "from": "build2",
        "to": "build1",
        "type": "info",
        "subject": f"subject {number}",
        "body": "body",
        "timestamp": f"2025-11-0{number % 9 + 1}T10:00:00Z",
        "read": False,
    }
    record.update(fields)
    return record


def documents(*records: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {MESSAGES_PATH: {"messages": list(records)}, **extra}


def inbox_ids(docs: dict[str, Any], me: str, include_read: bool = False) -> list[str]:
    return [entry.message.id for entry in messages.inbox(docs, me, include_read)]


def test_message_is_for_its_recipient_and_for_all_but_not_its_sender() -> None:
    assert messages.is_for({"from": "build2", "to": "build1"}, "build1")
    assert messages.is_for({"from": "build2", "to": "all"}, "build1")
    assert not messages.is_for({"from": "build1", "to": "all"}, "build1")
    assert not messages.is_for({"from": "build2", "to": "build3"}, "build1")
    assert not messages.is_for({"from": "build1", "to": "build1"}, "build1")


def test_inbox_lists_oldest_first_across_timestamp_formats() -> None:
    docs = documents(
        message(1, timestamp="2025-11-07 21:39"),
        message(2, timestamp="2025-11-07T21:38:00Z"),
        message(3, timestamp="20251107T214000Z"),
        message(4, timestamp=1762551000),
    )

    assert inbox_ids(docs, "build1") == ["msg_4", "msg_2", "msg_1", "msg_3"]


def test_message_without_a_readable_time_keeps_its_place_in_the_file() -> None:
    docs = documents(
        message(1, timestamp="2025-11-01T10:00:00Z"),
        message(2, timestamp="$(date -u)"),
        message(3, timestamp="2025-11-02T10:00:00Z"),
    )

    assert inbox_ids(docs, "build1") == ["msg_1", "msg_2", "msg_3"]


def test_legacy_messages_without_optional_fields_are_read_with_defaults() -> None:
    legacy = {"id": "m", "from": "build2", "to": "build1", "timestamp": "2025-11-04"}
    docs = documents(legacy)

    [entry] = messages.inbox(docs, "build1")

    assert (entry.message.type, entry.message.priority) == ("info", "normal")
    assert (entry.message.subject, entry.message.body) == ("", "")
    assert not entry.is_read


def test_legacy_read_flag_counts_for_the_single_recipient() -> None:
    docs = documents(message(1, read=True), message(2))

    assert inbox_ids(docs, "build1") == ["msg_2"]
    assert inbox_ids(docs, "build1", include_read=True) == ["msg_1", "msg_2"]


def test_legacy_read_flag_on_a_broadcast_hides_it_from_nobody() -> None:
    docs = documents(message(1, to="all", read=True))

    assert inbox_ids(docs, "build1") == ["msg_1"]
    assert inbox_ids(docs, "build3") == ["msg_1"]


def test_broadcast_read_by_one_server_stays_unread_for_the_others() -> None:
    record = message(1, to="all")

    messages.mark_read(record, "build1")
    docs = documents(record)

    assert inbox_ids(docs, "build1") == []
    assert inbox_ids(docs, "build3") == ["msg_1"]
    assert record["read"] is False


def test_marking_a_single_recipient_message_sets_the_seed_flag() -> None:
    record = message(1)

    assert messages.mark_read(record, "build1")
    assert not messages.mark_read(record, "build1")
    assert record["read_by"] == ["build1"]
    assert record["read"] is True


def test_copies_of_one_message_show_once_but_reused_ids_show_twice() -> None:
    docs = documents(message(1), message(1), message(1, subject="other"))

    assert inbox_ids(docs, "build1") == ["msg_1", "msg_1"]


def test_stray_entries_and_odd_documents_do_not_break_the_inbox() -> None:
    docs = {MESSAGES_PATH: {"messages": [None, 3, "x", message(1, read_by="build1")]}}

    assert inbox_ids(docs, "build1") == ["msg_1"]
    assert inbox_ids({MESSAGES_PATH: [message(2)]}, "build1") == ["msg_2"]
    assert inbox_ids({MESSAGES_PATH: {"messages": {}}}, "build1") == []
    assert inbox_ids({}, "build1") == []


def test_archive_is_listed_only_with_read_messages() -> None:
    archived = message(1, read=True, read_by=["build1"])
    docs = documents(
        message(2), **{"coordination/archive/messages-2025-10.json": [archived]}
    )

    assert inbox_ids(docs, "build1") == ["msg_2"]
    assert inbox_ids(docs, "build1", include_read=True) == ["msg_1", "msg_2"]


def test_read_by_all_counts_every_known_server_but_the_sender_of_a_broadcast() -> None:
    record = message(1, to="all", read_by=["build1"])
    known = ["build1", "build2", "build3"]

    assert not messages.is_read_by_all(record, known)
    record["read_by"].append("build3")
    assert messages.is_read_by_all(record, known)
    assert messages.is_read_by_all(message(2, read=True), known)


def test_thread_depth_follows_reply_to_through_the_archive() -> None:
    first = message(1)
    second = message(2, reply_to="msg_1")
    third = message(3, reply_to="msg_2")
    docs = documents(second, **{"coordination/archive/messages-2025-10.json": [first]})

    assert messages.thread_depth(docs, first) == 0
    assert messages.thread_depth(docs, third) == 2
    assert messages.thread_depth(docs, message(4, reply_to="msg_4")) == 1


def test_known_servers_come_from_server_directories() -> None:
    paths = ["build1/status.json", "build2/heartbeat.json", MESSAGES_PATH]

    assert messages.known_servers(paths) == ["build1", "build2"]
