"""`send`, `inbox`, `read` and `messages archive` as real processes on a real remote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Fleet, git
from tests.test_mailbox import publish_servers
from watcher.layout import MESSAGES_PATH


def cli(
    checkout: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUILD_WATCHER_")}
    return subprocess.run(
        [sys.executable, "-m", "watcher", "-q", "--repo", str(checkout), *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def ok(checkout: Path, *args: str, stdin: str | None = None) -> str:
    completed = cli(checkout, *args, stdin=stdin)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def inbox_json(checkout: Path, *flags: str) -> dict[str, Any]:
    git("fetch", "--quiet", "origin", cwd=checkout)
    result: dict[str, Any] = json.loads(
        ok(checkout, "inbox", "--format", "json", *flags)
    )
    return result


def inbox_ids(checkout: Path, *flags: str) -> list[str]:
    return [message["id"] for message in inbox_json(checkout, *flags)["messages"]]


@pytest.fixture
def servers(fleet: Fleet) -> dict[str, Path]:
    publish_servers(fleet)
    return {node: fleet.clone(node) for node in ("build1", "build2", "build3")}


def test_send_prints_the_id_and_the_recipient_sees_it(servers: dict[str, Path]) -> None:
    message_id = ok(
        servers["build1"], "send", "--to", "build2", "--subject", "s", "--body", "b"
    ).strip()

    listed = inbox_json(servers["build2"])["messages"]

    assert [m["id"] for m in listed] == [message_id]
    assert (listed[0]["from"], listed[0]["body"], listed[0]["read"]) == (
        "build1",
        "b",
        False,
    )
    assert inbox_ids(servers["build3"]) == []
    assert inbox_ids(servers["build1"]) == []


def test_body_comes_from_stdin_or_a_file(
    servers: dict[str, Path], tmp_path: Path
) -> None:
    body_file = tmp_path / "body.txt"
    body_file.write_text("from a file\n")
    checkout = servers["build1"]

    ok(checkout, "send", "--to", "all", "--subject", "one", stdin="from stdin\n")
    ok(
        checkout,
        "send",
        "--to",
        "all",
        "--subject",
        "two",
        "--body-file",
        str(body_file),
    )

    bodies = [m["body"] for m in inbox_json(servers["build2"])["messages"]]
    assert bodies == ["from stdin\n", "from a file\n"]


def test_unknown_recipient_is_a_usage_error_listing_the_known(
    servers: dict[str, Path],
) -> None:
    completed = cli(servers["build1"], "send", "--to", "build9", "--subject", "s")

    assert completed.returncode == 2
    assert "build1, build2, build3" in completed.stderr


@pytest.mark.parametrize("subject", ["two\nlines", "a\rreturn", "an \x1b[31m escape"])
def test_a_subject_of_more_than_one_line_is_a_usage_error(
    fleet: Fleet, subject: str
) -> None:
    completed = cli(fleet.clone("build1"), "send", "--to", "all", "--subject", subject)

    assert completed.returncode == 2
    assert "the subject must be one line of text" in completed.stderr


def test_credential_is_refused_without_echoing_it(servers: dict[str, Path]) -> None:
    secret = "ghp_" + "Zx9" * 12
    args = ("send", "--to", "build2", "--subject", "s", "--body", f"use {secret}")

    refused = cli(servers["build1"], *args)
    allowed = cli(servers["build1"], *args, "--allow-secret")

    assert refused.returncode == 2
    assert "a GitHub token" in refused.stderr
    assert secret[4:] not in refused.stderr + refused.stdout
    assert allowed.returncode == 0


def test_subject_and_body_are_data_never_run(
    servers: dict[str, Path], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    payload = f"$(touch {marker}) `touch {marker}`; touch {marker}"

    ok(
        servers["build1"],
        "send",
        "--to",
        "build2",
        "--subject",
        payload,
        "--body",
        payload,
    )
    [listed] = inbox_json(servers["build2"])["messages"]

    assert (listed["subject"], listed["body"]) == (payload, payload)
    assert not marker.exists()


def test_terminal_control_characters_in_a_body_are_shown_escaped(
    servers: dict[str, Path],
) -> None:
    ok(
        servers["build1"],
        "send",
        "--to",
        "build2",
        "--subject",
        "s",
        "--body",
        "\x1b]0;x",
    )
    git("fetch", "--quiet", "origin", cwd=servers["build2"])

    shown = ok(servers["build2"], "inbox")

    assert "\x1b" not in shown
    assert "\\x1b]0;x" in shown


def test_read_marks_one_recipient_and_inbox_all_still_lists(
    servers: dict[str, Path],
) -> None:
    message_id = ok(servers["build2"], "send", "--to", "all", "--subject", "s").strip()

    shown = ok(servers["build1"], "read", message_id)

    assert shown.strip() == f"read: {message_id}"
    assert inbox_ids(servers["build1"]) == []
    assert inbox_ids(servers["build1"], "--all") == [message_id]
    assert inbox_json(servers["build1"], "--all")["messages"][0]["read"] is True
    assert inbox_ids(servers["build3"]) == [message_id]


def test_read_of_an_unknown_id_fails_with_a_hint(servers: dict[str, Path]) -> None:
    completed = cli(servers["build1"], "read", "msg_missing")

    assert completed.returncode == 2
    assert "no message msg_missing" in completed.stderr
    assert "inbox --all" in completed.stderr


def test_archive_keeps_every_message_findable(
    fleet: Fleet, servers: dict[str, Path]
) -> None:
    first = ok(servers["build2"], "send", "--to", "build1", "--subject", "a").strip()
    second = ok(servers["build2"], "send", "--to", "build1", "--subject", "b").strip()
    ok(servers["build1"], "read", first)

    shown = ok(servers["build3"], "messages", "archive", "--older-than", "0")

    remote_messages = json.loads(fleet.remote_file(MESSAGES_PATH))["messages"]
    assert shown.startswith("archived 1 messages")
    assert [m["id"] for m in remote_messages] == [second]
    assert inbox_ids(servers["build1"], "--all") == [first, second]
    assert inbox_ids(servers["build1"]) == [second]
    git("merge", "--quiet", "--ff-only", "origin/main", cwd=servers["build1"])
    replayed = ok(servers["build1"], "log").splitlines()
    assert [line for line in replayed if first in line and "message.received" in line]


def test_inbox_needs_a_server_id(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")
    (checkout / ".build_server_id").unlink()

    completed = cli(checkout, "inbox")

    assert completed.returncode == 2
    assert "no server id" in completed.stderr
