"""Automatic replies: the built-in `ping`, configured reply rules, and loop guards.

A `request` whose subject is `ping` is answered with this server's status
summary. Other messages are matched against `reply_rules` (type, sender, subject
pattern; all given fields must match, the first matching rule wins):

    [[reply_rules]]
    type = "request"
    from = "build2"                 # optional
    subject = "^status( of .*)?$"   # a regular expression, searched, ignoring case
    reply = "Busy building; see shared/health_dashboard.json"
    # or: command = ["/usr/local/bin/answer"]  (the message as JSON on stdin,
    #      its standard output the reply; empty output sends no reply)

Loops between servers are stopped four ways. A reply is marked `automated: true`
and an automated message is never answered automatically. A server never answers
itself. A reply may not make a `reply_to` chain longer than `max_thread_depth`.
At most `max_replies_per_peer_per_hour` replies (or rule commands run) go to one
peer in any hour; that count is kept in the state directory, so a restart does
not reset it. The last two also stop peers that do not mark their replies, such
as a reply rule whose command sends with `build-watcher send`. A reply a guard
stops is logged at WARNING.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from watcher import __version__
from watcher.config import Config, ReplyRule
from watcher.errors import UsageError, WatcherError
from watcher.events import Event, EventKind
from watcher.layout import status_path
from watcher.mailbox import SendMessage, is_for, thread_depth
from watcher.outbox import write_durably
from watcher.process import environment, run
from watcher.recordstate import message_key
from watcher.timestamps import format_timestamp, now_utc, parse_timestamp
from watcher.transaction import OutcomeStatus

if TYPE_CHECKING:
    from watcher.daemon import Daemon

PING_SUBJECT = "ping"
COMMAND_TIMEOUT = 60.0
REPLY_LIMIT = 64 * 1024
WINDOW = timedelta(hours=1)
SUBJECT_LIMIT = 1024
LEDGER_FILE = "responder.json"
ANSWERED_KEPT = 1000


@dataclass(frozen=True)
class Rule:
    """A configured reply rule with its subject pattern compiled."""

    spec: ReplyRule
    subject: re.Pattern[str] | None
    label: str

    def matches(self, record: dict[str, Any]) -> bool:
        spec = self.spec
        if (
            spec.message_type is not None
            and record.get("type", "info") != spec.message_type
        ):
            return False
        if spec.sender is not None and record.get("from") != spec.sender:
            return False
        subject = str(record.get("subject", ""))[:SUBJECT_LIMIT]
        return self.subject is None or bool(self.subject.search(subject))


def compile_rules(rules: tuple[ReplyRule, ...], where: str) -> list[Rule]:
    """The rules, or a UsageError naming the one whose pattern does not compile."""
    compiled = []
    for index, spec in enumerate(rules):
        label = f"reply_rules[{index}]"
        try:
            pattern = re.compile(spec.subject, re.IGNORECASE) if spec.subject else None
        except re.error as error:
            raise UsageError(
                f"{where}: `{label}.subject` is not a regular expression: {error}",
                hint='a pattern looks like "^status" or "(?i)deploy .* done"',
            ) from error
        compiled.append(Rule(spec, pattern, label))
    return compiled


def is_ping(record: dict[str, Any]) -> bool:
    subject = str(record.get("subject", "")).strip().lower()
    return record.get("type") == "request" and subject == PING_SUBJECT


class ReplyLedger:
    """Replies sent per peer in the last hour, and messages answered, kept on disk
    (`<state>/responder.json`) so that a restart resets neither the rate cap nor
    the memory of what was answered."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sent: dict[str, list[str]] = {}
        self.answered: list[str] = []
        self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.sent = {str(k): list(map(str, v)) for k, v in data["sent"].items()}
            self.answered = list(map(str, data["answered"]))
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            logger.bind(path=str(self.path)).warning(
                "reply ledger unreadable, starting a new one: {error}", error=error
            )

    def count_since(self, peer: str, since: datetime) -> int:
        moments = (parse_timestamp(text) for text in self.sent.get(peer, []))
        return sum(1 for moment in moments if moment is not None and moment > since)

    def has_answered(self, key: str) -> bool:
        return key in self.answered

    def note(self, peer: str, key: str, now: datetime) -> None:
        """Count one reply to `peer` now, forget what is older than the window."""
        since = now - WINDOW
        for name in list(self.sent):
            kept = [t for t in self.sent[name] if (parse_timestamp(t) or now) > since]
            self.sent[name] = kept
        self.sent.setdefault(peer, []).append(format_timestamp(now))
        self.answered = [*self.answered, key][-ANSWERED_KEPT:]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "sent": {k: v for k, v in self.sent.items() if v},
            "answered": self.answered,
        }
        write_durably(self.path, json.dumps(document, indent=1) + "\n")


@dataclass(frozen=True)
class Answer:
    """What to reply with: the status summary, fixed text, or a command's output."""

    label: str
    text: str | None = None
    command: tuple[str, ...] = ()
    is_ping: bool = False


def choose_answer(record: dict[str, Any], me: str, rules: list[Rule]) -> Answer | None:
    """The answer for a message, or None; never for my own or automated messages."""
    if not is_for(record, me) or record.get("automated") is True:
        return None
    if is_ping(record):
        return Answer("ping", is_ping=True)
    for rule in rules:
        if rule.matches(record):
            return Answer(rule.label, rule.spec.reply, rule.spec.command)
    return None


def reply_subject(subject: Any) -> str:
    """`Re: ` and the subject on one line: a hand-written one may hold breaks."""
    printable = "".join(c if c.isprintable() else " " for c in str(subject or ""))
    text = " ".join(printable.split()) or "(no subject)"
    return text if text.lower().startswith("re:") else f"Re: {text}"


class Responder:
    """The daemon's handler for received messages."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.ledger = ReplyLedger(daemon.config.state_path / LEDGER_FILE)
        self.started = time.monotonic()
        self._rules_for: tuple[ReplyRule, ...] | None = None
        self._rules: list[Rule] = []

    @property
    def config(self) -> Config:
        return self.daemon.config

    def rules(self) -> list[Rule]:
        """Compiled once per configuration (a reload may change them)."""
        if self._rules_for != self.config.reply_rules:
            self._rules = compile_rules(self.config.reply_rules, self.config.source)
            self._rules_for = self.config.reply_rules
        return self._rules

    def on_message(self, event: Event) -> None:
        record = dict(event.record or {})
        answer = choose_answer(record, self.daemon.node, self.rules())
        if answer is None or not self.is_allowed(record, answer):
            return
        self.ledger.note(str(record.get("from")), message_key(record), now_utc())
        body = self.compose(answer, record)
        if body is not None:
            self.send(record, answer, body)

    def is_allowed(self, record: dict[str, Any], answer: Answer) -> bool:
        """The loop guards that are caps; a stopped reply is a WARNING."""
        peer = str(record.get("from"))
        log = logger.bind(message=record.get("id"), peer=peer, rule=answer.label)
        if self.ledger.has_answered(message_key(record)):
            log.debug("message answered before; not again")
            return False
        depth = thread_depth(self.daemon.snapshot.documents, record) + 1
        cap = self.config.max_thread_depth
        if depth > cap:
            why = f"the thread would be {depth} deep, over max_thread_depth {cap}"
        else:
            sent = self.ledger.count_since(peer, now_utc() - WINDOW)
            if sent < self.config.max_replies_per_peer_per_hour:
                return True
            why = f"{sent} replies in the last hour: max_replies_per_peer_per_hour"
        log.warning("no automatic reply to {peer}: {why}", peer=peer, why=why)
        return False

    def compose(self, answer: Answer, record: dict[str, Any]) -> str | None:
        if answer.is_ping:
            return self.status_summary()
        if answer.command:
            return self.run_command(answer, record)
        return answer.text

    def status_summary(self) -> str:
        """This server's status as published, and the daemon's own state, as JSON."""
        snapshot = self.daemon.snapshot
        status = snapshot.get(status_path(self.daemon.node)) or {}
        if not isinstance(status, dict):
            status = {}
        summary = {
            "server": self.daemon.node,
            "status": status.get("status", "unknown"),
            "current_job": status.get("current_job"),
            "last_build": status.get("last_build"),
            "status_time": status.get("timestamp"),
            "processed_commit": snapshot.commit,
            "daemon_uptime_seconds": round(time.monotonic() - self.started),
            "version": __version__,
        }
        return json.dumps(summary, indent=2, sort_keys=True, default=str)

    def run_command(self, answer: Answer, record: dict[str, Any]) -> str | None:
        """The rule's command, the message as JSON on stdin (never in an argument)."""
        log = logger.bind(message=record.get("id"), rule=answer.label)
        env = environment(
            {
                "BUILD_WATCHER_NODE": self.daemon.node,
                "BUILD_WATCHER_REPO": str(self.config.repo),
                "BUILD_WATCHER_MESSAGE_ID": str(record.get("id", "")),
            }
        )
        data = json.dumps(record, ensure_ascii=False, default=str).encode("utf-8")
        try:
            completed = run(
                answer.command,
                cwd=self.config.repo,
                env=env,
                input_bytes=data,
                timeout=COMMAND_TIMEOUT,
            )
        except WatcherError as error:
            log.error("reply command failed: {error}", error=error.message)
            return None
        text = completed.stdout[:REPLY_LIMIT].decode("utf-8", "replace").strip()
        if not text:
            log.info("reply command printed nothing; no reply sent")
        return text or None

    def send(self, record: dict[str, Any], answer: Answer, body: str) -> None:
        message_id, peer = record.get("id"), str(record.get("from"))
        log = logger.bind(message=message_id, peer=peer, rule=answer.label)
        try:
            operation = SendMessage(
                to=peer,
                subject=reply_subject(record.get("subject")),
                body=body,
                type="response",
                reply_to=message_id if isinstance(message_id, str) else None,
                automated=True,
            )
            outcome = self.daemon.transact(operation)
        except WatcherError as error:
            log.warning("automatic reply not sent: {why}", why=error.message)
            return
        log = log.bind(reply=operation.message_id, status=outcome.status.value)
        if outcome.status is OutcomeStatus.FAILED:
            log.error(
                "automatic reply to {peer} failed: {why}", peer=peer, why=outcome.reason
            )
        else:
            log.info(
                "automatic reply to {peer}: {status}",
                peer=peer,
                status=outcome.status.value,
            )


def install(daemon: Daemon) -> None:
    """Answer received messages; a reply rule that does not compile stops the start."""
    responder = Responder(daemon)
    responder.rules()
    daemon.add_handler(EventKind.MESSAGE_RECEIVED, responder.on_message)
