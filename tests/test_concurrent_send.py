"""Three servers send fifty messages each at the same time: none is lost."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

from tests.conftest import Fleet
from tests.test_mailbox import publish_servers
from watcher.layout import MESSAGES_PATH

SENDERS = ("build1", "build2", "build3")
PER_SENDER = 50

# Each process sends its messages one transaction at a time, as a command would;
# it prints one line per outcome so the test can tell a lost message from a slow one.
SENDER_SCRIPT = """
import sys
from watcher.config import load_config
from watcher.mailbox import SendMessage
from watcher.transaction import transact

repo, node, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = load_config(repo, node, None, environ={})
sys.stdin.readline()  # start together
for number in range(count):
    operation = SendMessage("all", f"{node} message {number}", body=str(number))
    outcome = transact(config, operation, offline_ok=False)
    print(outcome.status.value, operation.message_id, outcome.attempts, flush=True)
"""


def test_three_concurrent_senders_lose_no_message(fleet: Fleet) -> None:
    publish_servers(fleet, SENDERS)
    script = [sys.executable, "-c", SENDER_SCRIPT]
    senders = [
        subprocess.Popen(
            [*script, str(fleet.clone(node)), node, str(PER_SENDER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for node in SENDERS
    ]
    for sender in senders:
        assert sender.stdin is not None
        sender.stdin.write("go\n")
        sender.stdin.flush()
    outputs = [sender.communicate(timeout=600) for sender in senders]

    reported = [line.split() for out, _ in outputs for line in out.splitlines()]
    stored = json.loads(fleet.remote_file(MESSAGES_PATH))["messages"]
    assert [sender.returncode for sender in senders] == [0, 0, 0], outputs
    assert Counter(status for status, _, _ in reported) == {"done": 150}
    assert sorted(m["id"] for m in stored) == sorted(mid for _, mid, _ in reported)
    assert len({m["id"] for m in stored}) == 150
    assert Counter(m["from"] for m in stored) == dict.fromkeys(SENDERS, PER_SENDER)
    assert any(int(attempts) > 1 for _, _, attempts in reported), "no contention"
    assert len(fleet.remote_log()) == 2 + 150
