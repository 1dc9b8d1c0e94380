"""Automatic replies and their loop guards, driven with real snapshots and transactions.

`Host` gives the responder what the daemon gives it (configuration, identity, the
documents of the shared branch, transactions) from a real checkout of a real bare
remote. The last test runs two real `build-watcher watch` processes whose reply
rules would answer each other forever.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from tests.conftest import Fleet, git
from tests.test_mailbox import publish_servers
from watcher.config import Config, ReplyRule
from watcher.documents import Snapshot, read_snapshot
from watcher.errors import UsageError
from watcher.events import Event, EventKind
from watcher.layout import MESSAGES_PATH
from watcher.mailbox import SendMessage
from watcher.messages import message_records
from watcher.responder import Responder, choose_answer, compile_rules
from watcher.transaction import Operation, Outcome, transact

ANY = ReplyRule(reply="ack")


class Host:
    """The parts of the daemon the responder uses, backed by a real checkout."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.node = config.require_node()

    @property
    def snapshot(self) -> Snapshot:
        git("fetch", "--quiet", "origin", cwd=self.config.repo)
        return read_snapshot(self.config.repo, "refs/remotes/origin/main")

    def transact(self, operation: Operation) -> Outcome:
        return transact(self.config, operation)


class Pair:
    """Two servers on one remote: `build1` sends, `build2` answers."""

    def __init__(self, fleet: Fleet, **settings: Any) -> None:
        self.fleet = fleet
        self.configs = {
            node: replace(
                Config(
                    repo=fleet.clone(node), node=node, state_dir=fleet.root / node / "s"
                ),
                **settings,
            )
            for node in ("build1", "build2")
        }

    def send(self, node: str, operation: SendMessage) -> dict[str, Any]:
        assert transact(self.configs[node], operation).is_done
        return self.record(operation.message_id)

    def record(self, message_id: str) -> dict[str, Any]:
        [found] = [m for m in self.messages() if m["id"] == message_id]
        return found

    def messages(self) -> list[dict[str, Any]]:
        return message_records(json.loads(self.fleet.remote_file(MESSAGES_PATH)))

    def responder(self, node: str = "build2", **settings: Any) -> Responder:
        config = replace(self.configs[node], **settings)
        return Responder(Host(config))  # type: ignore[arg-type]

    def replies_from(self, node: str) -> list[dict[str, Any]]:
        return [m for m in self.messages() if m["from"] == node]


def received(record: dict[str, Any]) -> Event:
    return Event(
        EventKind.MESSAGE_RECEIVED,
        "evt_test",
        None,
        MESSAGES_PATH,
        record["id"],
        record,
        None,
        actor=record["from"],
    )


@pytest.fixture
def pair(fleet: Fleet) -> Pair:
    publish_servers(fleet, ("build1", "build2"))
    return Pair(fleet)


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    found: list[str] = []
    handle = logger.add(lambda m: found.append(m.record["message"]), level="WARNING")
    yield found
    logger.remove(handle)


def test_rules_match_on_type_sender_and_subject_first_rule_wins() -> None:
    rules = compile_rules(
        (
            ReplyRule(
                message_type="request", sender="build1", subject="^deploy", reply="1"
            ),
            ReplyRule(subject="STATUS", reply="2"),
        ),
        "test.toml",
    )
    base = {"from": "build1", "to": "build2", "type": "request"}

    def label(**fields: Any) -> str | None:
        answer = choose_answer({**base, **fields}, "build2", rules)
        return answer.text if answer else None

    assert label(subject="deploy now") == "1"
    assert label(subject="what is the status?") == "2"
    assert label(subject="deploy now", type="info") is None
    assert label(subject="hello") is None
    assert label(subject="status", automated=True) is None
    assert label(subject="status", **{"from": "build2", "to": "all"}) is None


def test_a_rule_pattern_that_does_not_compile_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"reply_rules\[0\]\.subject"):
        compile_rules((ReplyRule(subject="(", reply="x"),), "test.toml")


def test_ping_is_answered_with_the_status_summary(pair: Pair) -> None:
    ping = pair.send("build1", SendMessage("build2", "ping", type="request"))

    pair.responder().on_message(received(ping))

    [reply] = pair.replies_from("build2")
    summary = json.loads(reply["body"])
    assert (reply["to"], reply["type"], reply["reply_to"]) == (
        "build1",
        "response",
        ping["id"],
    )
    assert reply["automated"] is True
    assert reply["subject"] == "Re: ping"
    assert (summary["server"], summary["status"]) == ("build2", "idle")
    assert summary["processed_commit"]


def test_a_rule_replies_with_its_text(pair: Pair) -> None:
    asked = pair.send("build1", SendMessage("build2", "status?", type="request"))

    pair.responder(reply_rules=(ANY,)).on_message(received(asked))

    assert [m["body"] for m in pair.replies_from("build2")] == ["ack"]


def test_a_rule_command_gets_the_message_on_stdin_never_in_its_arguments(
    pair: Pair, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    subject = f"$(touch {marker}); `touch {marker}`"
    script = (
        "import json,sys; m=json.load(sys.stdin); print('seen', m['id'], sys.argv[1:])"
    )
    rule = ReplyRule(command=(sys.executable, "-c", script))
    asked = pair.send("build1", SendMessage("build2", subject, body=subject))

    pair.responder(reply_rules=(rule,)).on_message(received(asked))

    [reply] = pair.replies_from("build2")
    assert reply["body"] == f"seen {asked['id']} []"
    assert not marker.exists()


def test_a_command_that_prints_nothing_sends_nothing(pair: Pair) -> None:
    rule = ReplyRule(command=(sys.executable, "-c", "pass"))
    asked = pair.send("build1", SendMessage("build2", "hello"))

    pair.responder(reply_rules=(rule,)).on_message(received(asked))

    assert pair.replies_from("build2") == []


def test_a_reply_that_looks_like_a_credential_is_not_sent(
    pair: Pair, warnings: list[str]
) -> None:
    leak = ReplyRule(reply="password = hunter2hunter2")
    asked = pair.send("build1", SendMessage("build2", "hello"))

    pair.responder(reply_rules=(leak,)).on_message(received(asked))

    assert pair.replies_from("build2") == []
    assert any("credential" in w and "hunter2" not in w for w in warnings)


def test_automated_messages_and_own_messages_are_never_answered(pair: Pair) -> None:
    automated = pair.send(
        "build1", SendMessage("build2", "ping", type="request", automated=True)
    )
    own = pair.send("build2", SendMessage("all", "ping", type="request"))
    responder = pair.responder(reply_rules=(ANY,))

    responder.on_message(received(automated))
    responder.on_message(received(own))

    assert pair.replies_from("build2") == [own]


def test_a_message_is_answered_once(pair: Pair) -> None:
    asked = pair.send("build1", SendMessage("build2", "hello"))
    responder = pair.responder(reply_rules=(ANY,))

    responder.on_message(received(asked))
    pair.responder(reply_rules=(ANY,)).on_message(received(asked))

    assert len(pair.replies_from("build2")) == 1


def test_thread_depth_is_capped(pair: Pair, warnings: list[str]) -> None:
    first = pair.send("build1", SendMessage("build2", "a"))
    second = pair.send("build2", SendMessage("build1", "b", reply_to=first["id"]))
    third = pair.send("build1", SendMessage("build2", "c", reply_to=second["id"]))
    responder = pair.responder(reply_rules=(ANY,), max_thread_depth=2)

    responder.on_message(received(third))
    responder.on_message(received(first))

    [reply] = [m for m in pair.replies_from("build2") if m.get("automated")]
    assert reply["reply_to"] == first["id"]
    assert any("3 deep" in w and "max_thread_depth 2" in w for w in warnings)


def test_replies_per_peer_per_hour_are_capped_across_a_restart(
    pair: Pair, warnings: list[str]
) -> None:
    asked = [pair.send("build1", SendMessage("build2", f"hello {n}")) for n in range(4)]
    settings: dict[str, Any] = {
        "reply_rules": (ANY,),
        "max_replies_per_peer_per_hour": 2,
    }

    pair.responder(**settings).on_message(received(asked[0]))
    pair.responder(**settings).on_message(received(asked[1]))
    restarted = pair.responder(**settings)
    restarted.on_message(received(asked[2]))
    restarted.on_message(received(asked[3]))

    assert len(pair.replies_from("build2")) == 2
    assert sum("max_replies_per_peer_per_hour" in w for w in warnings) == 2


def test_two_responders_that_answer_everything_stop_after_one_reply(pair: Pair) -> None:
    """The automated mark alone ends an exchange between two build-watcher servers."""
    responders = {
        node: pair.responder(node, reply_rules=(ANY,)) for node in pair.configs
    }
    pending = [pair.send("build1", SendMessage("build2", "hello"))]

    while pending:
        message = pending.pop()
        before = len(pair.messages())
        responders[message["to"]].on_message(received(message))
        pending.extend(pair.messages()[before:])

    assert [(m["from"], m.get("automated", False)) for m in pair.messages()] == [
        ("build1", False),
        ("build2", True),
    ]


PROGRAM = Path(sys.executable).with_name("build-watcher")
# A reply rule's command that answers by sending an ordinary (not automated)
# message through the command line, as a person's script might: the automated
# mark cannot stop this exchange, so only the caps can. It prints nothing, so the
# responder itself sends no reply.
ANSWER_BY_SEND = """
import json, subprocess, sys
message = json.load(sys.stdin)
command = [sys.argv[1], "-q", "send", "--to", message["from"], "--subject", "again"]
if sys.argv[2] == "thread":
    command += ["--reply-to", message["id"]]
subprocess.run(command, check=True, stdin=subprocess.DEVNULL, capture_output=True)
"""


class WatchProcess:
    """A real `build-watcher watch`; its JSON log records are collected as they come."""

    def __init__(self, checkout: Path, config: Path) -> None:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "BUILD_"))
        }
        env.pop("NOTIFY_SOCKET", None)
        env.pop("JOURNAL_STREAM", None)
        options = ["--repo", str(checkout), "--config", str(config)]
        self.process = subprocess.Popen(
            [str(PROGRAM), *options, "--log-format", "json", "watch"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.records: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.raw.append(line)
            with contextlib.suppress(ValueError, KeyError):
                self.records.append(json.loads(line)["record"])

    def logged(self, level: str, words: str) -> list[str]:
        return [
            record["message"]
            for record in list(self.records)
            if record["level"]["name"] == level and words in record["message"]
        ]

    def wait_ready(self) -> WatchProcess:
        eventually(lambda: self.logged("INFO", "daemon ready") or self.process.poll())
        if self.process.poll() is not None:
            self.reader.join(timeout=10)
            raise AssertionError(b"the daemon exited:\n" + b"".join(self.raw))
        return self

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def eventually(predicate: Callable[[], Any], timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout} s")


@pytest.fixture
def watchers(fleet: Fleet) -> Iterator[Callable[[str, str], WatchProcess]]:
    started: list[WatchProcess] = []

    def start(node: str, settings: str) -> WatchProcess:
        config = fleet.root / f"{node}.toml"
        config.write_text(f"poll_interval = 0.3\nkill_grace = 5\n{settings}")
        started.append(WatchProcess(fleet.clone(node), config).wait_ready())
        return started[-1]

    yield start
    for watcher in started:
        watcher.stop()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "caps", "total", "stopper", "words"),
    [
        ("thread", (3, 100), 1 + 3, "build1", "max_thread_depth 3"),
        ("no-thread", (10, 3), 1 + 3 + 3, "build2", "max_replies_per_peer_per_hour"),
    ],
)
def test_two_daemons_answering_each_other_forever_stop_within_the_caps(
    fleet: Fleet,
    watchers: Callable[[str, str], WatchProcess],
    how: str,
    caps: tuple[int, int],
    total: int,
    stopper: str,
    words: str,
) -> None:
    publish_servers(fleet, ("build1", "build2"))
    command = json.dumps([sys.executable, "-c", ANSWER_BY_SEND, str(PROGRAM), how])
    settings = (
        f"max_thread_depth = {caps[0]}\nmax_replies_per_peer_per_hour = {caps[1]}\n"
        f"[[reply_rules]]\ncommand = {command}\n"
    )
    daemons = {node: watchers(node, settings) for node in ("build1", "build2")}
    sender = fleet.clone("person")

    options = ["-q", "--repo", str(sender), "--node", "build1"]
    subprocess.run(
        [str(PROGRAM), *options, "send", "--to", "build2", "--subject", "hello"],
        check=True,
        capture_output=True,
    )

    [warning] = eventually(lambda: daemons[stopper].logged("WARNING", words))
    messages = json.loads(fleet.remote_file(MESSAGES_PATH))["messages"]
    assert len(messages) == total, [m["subject"] for m in messages]
    assert "no automatic reply" in warning
    assert [d.stop() for d in daemons.values()] == [0, 0]
    assert len(json.loads(fleet.remote_file(MESSAGES_PATH))["messages"]) == total
