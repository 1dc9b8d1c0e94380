"""`inbox` on the real history: every server sees exactly the messages meant for it.

The expected lists are computed here straight from the JSON, without the
product's code, by the rule the product documents: a message is for a server when
`to` is its id or `all` and it is not from it; it is read by that server when its
id is in `read_by`, or when `read` is true and the message was addressed to that
server alone (an old `read: true` on a broadcast says nothing about who read it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git

SERVERS = ("build1", "build2", "build3", "build4")
# A version that still holds broadcasts, some with the old global `read: true`.
WITH_BROADCASTS = "677963bf2b8e5d6ad792bb9c80edcc9526633286"


@pytest.fixture(scope="module")
def history(corpus_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private clone whose remote-tracking branch can be moved to any version."""
    target = tmp_path_factory.mktemp("corpus-inbox") / "history"
    git("clone", "--quiet", str(corpus_repo), str(target), cwd=target.parent)
    return target


def stored_messages(repo: Path, rev: str) -> list[dict[str, Any]]:
    shown = git("show", f"{rev}:coordination/messages.json", cwd=repo)
    return [m for m in json.loads(shown)["messages"] if isinstance(m, dict)]


def expected(messages: list[dict[str, Any]], me: str, unread_only: bool) -> list[str]:
    chosen = []
    for message in messages:
        if message.get("from") == me or message.get("to") not in (me, "all"):
            continue
        read = me in message.get("read_by", []) or (
            message.get("read") is True and message.get("to") == me
        )
        if not (unread_only and read):
            chosen.append(message["id"])
    return chosen


def listed(repo: Path, me: str, *flags: str) -> list[str]:
    command = [sys.executable, "-m", "watcher", "--repo", str(repo), "--node", me]
    completed = subprocess.run(
        [*command, "inbox", "--format", "json", *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [message["id"] for message in json.loads(completed.stdout)["messages"]]


@pytest.mark.parametrize("rev", ["origin/main", WITH_BROADCASTS])
@pytest.mark.parametrize("me", SERVERS)
def test_inbox_lists_exactly_the_messages_for_each_server(
    history: Path, rev: str, me: str
) -> None:
    commit = git("rev-parse", rev, cwd=history).strip()
    git("update-ref", "refs/remotes/origin/main", commit, cwd=history)
    messages = stored_messages(history, commit)

    unread = listed(history, me)
    everything = listed(history, me, "--all")

    assert sorted(unread) == sorted(expected(messages, me, unread_only=True))
    assert sorted(everything) == sorted(expected(messages, me, unread_only=False))
    times = {m["id"]: moment(m["timestamp"]) for m in messages}
    assert [times[i] for i in everything] == sorted(times[i] for i in everything)


def moment(text: str) -> datetime:
    """The two shapes this history's messages use: `...Z` and `YYYY-MM-DD HH:MM`."""
    return datetime.fromisoformat(text.replace("Z", "") + "+00:00")


def test_the_history_exercises_broadcasts_and_legacy_read_flags(history: Path) -> None:
    messages = stored_messages(history, WITH_BROADCASTS)
    broadcasts = [m for m in messages if m.get("to") == "all"]

    assert any(m.get("read") is True for m in broadcasts)
    assert set(expected(messages, "build3", True)) >= {m["id"] for m in broadcasts}
