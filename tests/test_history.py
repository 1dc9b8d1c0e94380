"""Replaying history: the real corpus, and small histories built for one case each."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git
from watcher.documents import BlobCache, read_snapshot
from watcher.events import Event, EventKind
from watcher.history import events_between, replay, require_commit
from watcher.layout import MESSAGES_PATH
from watcher.progress import Progress, progress_path

K = EventKind
RECIPIENTS = ("build1", "build2", "build3", "build4")


@dataclass
class CorpusReplay:
    commits: int
    events: dict[str | None, list[Event]]


@pytest.fixture(scope="session")
def corpus_replay(corpus_repo: Path) -> CorpusReplay:
    """The whole corpus replayed once per recipient, sharing one blob cache."""
    cache = BlobCache(capacity=8192)
    events: dict[str | None, list[Event]] = {}
    commits = 0
    for me in (None, *RECIPIENTS):
        steps = list(replay(corpus_repo, me, cache=cache))
        commits = len(steps)
        events[me] = [event for step in steps for event in step.events]
    return CorpusReplay(commits, events)


def message_versions(repo: Path) -> list[Any]:
    """Every parseable first-parent version of messages.json, read with plain git."""
    log = git("log", "--first-parent", "--format=%H", "--", MESSAGES_PATH, cwd=repo)
    wanted = "".join(f"{sha}:{MESSAGES_PATH}\n" for sha in log.split())
    out = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=repo,
        input=wanted.encode(),
        capture_output=True,
        check=True,
    ).stdout
    versions, position = [], 0
    while position < len(out):
        header_end = out.index(b"\n", position)
        header = out[position:header_end].split()
        if header[-1] == b"missing":
            position = header_end + 1
            continue
        size = int(header[2])
        body = out[header_end + 1 : header_end + 1 + size]
        position = header_end + 1 + size + 1
        try:
            versions.append(json.loads(body))
        except ValueError:
            continue
    return versions


def expected_arrivals(versions: list[Any], recipient: str) -> set[str]:
    """Ids of messages that ever reached `recipient`: to it or to all, not from it."""
    return {
        record["id"]
        for version in versions
        for record in version.get("messages", [])
        if record.get("from") != recipient and record.get("to") in (recipient, "all")
    }


def test_the_corpus_replays_every_first_parent_commit(
    corpus_repo: Path, corpus_replay: CorpusReplay
) -> None:
    count = git("rev-list", "--count", "--first-parent", "HEAD", cwd=corpus_repo)

    assert corpus_replay.commits == int(count)


@pytest.mark.parametrize("recipient", RECIPIENTS)
def test_each_message_reaches_each_recipient_exactly_once(
    corpus_repo: Path, corpus_replay: CorpusReplay, recipient: str
) -> None:
    expected = expected_arrivals(message_versions(corpus_repo), recipient)
    received = [
        event.subject
        for event in corpus_replay.events[recipient]
        if event.kind is K.MESSAGE_RECEIVED
    ]

    assert expected, "the corpus has messages for every recipient"
    assert Counter(received) == Counter(expected)


def test_the_fleet_view_receives_every_message_once(
    corpus_repo: Path, corpus_replay: CorpusReplay
) -> None:
    versions = message_versions(corpus_repo)
    every_id = {r["id"] for version in versions for r in version.get("messages", [])}
    received = [
        event.subject
        for event in corpus_replay.events[None]
        if event.kind is K.MESSAGE_RECEIVED
    ]

    assert Counter(received) == Counter(every_id)


def test_invalid_corpus_versions_are_reported_and_the_replay_goes_on(
    corpus_replay: CorpusReplay,
) -> None:
    events = corpus_replay.events[None]
    invalid = [event for event in events if event.kind is K.DOCUMENT_INVALID]
    paths = Counter(event.path for event in invalid)

    assert paths["coordination/message_stats.json"] == 16
    assert paths["build2/heartbeat.json"] == 1
    assert all(event.problem is not None for event in invalid)
    stats = next(e for e in invalid if e.path.endswith("message_stats.json"))
    assert stats.problem is not None and stats.problem.line > 0
    assert events.index(invalid[-1]) < len(events) - 1


def test_the_corpus_jobs_go_through_their_lives(corpus_replay: CorpusReplay) -> None:
    lives: dict[str, list[str]] = {}
    for event in corpus_replay.events[None]:
        if event.kind.value.startswith("job."):
            lives.setdefault(event.subject, []).append(event.kind.value)

    assert lives["job_1761779789"] == ["job.queued", "job.claimed", "job.finished"]
    assert all(life[0] == "job.queued" for life in lives.values())


def test_every_view_computes_the_same_ids_for_the_same_changes(
    corpus_replay: CorpusReplay,
) -> None:
    fleet = {e.id: e.commit for e in corpus_replay.events[None]}
    mine = corpus_replay.events["build1"]

    assert all(fleet[event.id] == event.commit for event in mine)
    assert len({event.id for event in mine}) == len(mine)


# Small histories, one case each.


def write(repo: Path, path: str, value: Any, message: str, text: str = "") -> str:
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text or json.dumps(value, indent=2) + "\n")
    git("add", "-A", cwd=repo)
    git("commit", "--quiet", "--allow-empty", "-m", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo).strip()


def note(msg_id: str, to: str = "build1", **fields: Any) -> dict[str, Any]:
    return {
        "id": msg_id,
        "from": "build2",
        "to": to,
        "subject": f"about {msg_id}",
        "body": "text",
        "timestamp": "2025-11-04T10:00:00Z",
        **fields,
    }


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    git("init", "--quiet", "--initial-branch=main", str(path), cwd=tmp_path)
    return path


def received(repo: Path, me: str = "build1", **kw: Any) -> list[str]:
    return [
        event.subject
        for step in replay(repo, me, **kw)
        for event in step.events
        if event.kind is K.MESSAGE_RECEIVED
    ]


def test_a_message_removed_and_added_again_is_received_once(repo: Path) -> None:
    write(repo, MESSAGES_PATH, {"messages": [note("m1")]}, "send")
    write(repo, MESSAGES_PATH, {"messages": []}, "remove")
    write(repo, MESSAGES_PATH, {"messages": [note("m1"), note("m2")]}, "add again")

    assert received(repo) == ["m1", "m2"]


def test_a_rewritten_or_deleted_and_restored_file_repeats_nothing(repo: Path) -> None:
    document = {"messages": [note("m1"), note("m2", to="all")]}
    write(repo, MESSAGES_PATH, document, "send")
    crlf = json.dumps(document, indent=4).replace("\n", "\r\n")
    write(repo, MESSAGES_PATH, None, "rewrite", text=crlf)
    (repo / MESSAGES_PATH).unlink()
    git("commit", "--quiet", "-am", "delete", cwd=repo)
    write(repo, MESSAGES_PATH, document, "restore")

    assert received(repo) == ["m1", "m2"]


def test_an_invalid_version_is_reported_and_nothing_is_taken_from_it(
    repo: Path,
) -> None:
    write(repo, MESSAGES_PATH, {"messages": [note("m1")]}, "send")
    broken = "<<<<<<< HEAD\n" + json.dumps({"messages": [note("m2")]})
    write(repo, MESSAGES_PATH, None, "conflict", text=broken)
    write(repo, MESSAGES_PATH, {"messages": [note("m1"), note("m3")]}, "fix")

    kinds = [
        (event.kind.value, event.subject)
        for step in replay(repo, "build1")
        for event in step.events
    ]

    assert kinds == [
        ("message.received", "m1"),
        ("document.invalid", MESSAGES_PATH),
        ("message.received", "m3"),
    ]


def test_a_merge_brings_its_side_branch_in_one_step(repo: Path) -> None:
    write(repo, MESSAGES_PATH, {"messages": [note("m1")]}, "send")
    git("checkout", "--quiet", "-b", "side", cwd=repo)
    write(repo, MESSAGES_PATH, {"messages": [note("m1"), note("m2")]}, "side 1")
    write(repo, MESSAGES_PATH, {"messages": [note("m1"), note("m2"), note("m3")]}, "2")
    git("checkout", "--quiet", "main", cwd=repo)
    write(repo, "coordination/jobs.json", {"jobs": []}, "main moves on")
    git("merge", "--quiet", "--no-ff", "-m", "merge side", "side", cwd=repo)
    merge = require_commit(repo, "HEAD")

    steps = list(replay(repo, "build1"))

    assert [step.commit.summary for step in steps][-1] == "merge side"
    assert len(steps) == 3
    assert [(e.subject, e.commit) for e in steps[-1].events] == [
        ("m2", merge),
        ("m3", merge),
    ]


def test_a_restarted_server_reports_what_it_missed_exactly_once(
    repo: Path, tmp_path: Path
) -> None:
    first = write(repo, MESSAGES_PATH, {"messages": [note("m1")]}, "send")
    path = progress_path(tmp_path / "state", "build1")
    progress = Progress.load(path, "build1")
    progress.start_at(read_snapshot(repo, first))
    progress.save()
    write(repo, MESSAGES_PATH, {"messages": []}, "clear")
    write(repo, MESSAGES_PATH, {"messages": [note("m1"), note("m2")]}, "send more")
    tip = write(repo, "coordination/jobs.json", {"jobs": []}, "unrelated")

    restarted = Progress.load(path, "build1")
    known = read_snapshot(repo, first)
    missed = events_between(
        repo, restarted.last_commit, tip, "build1", restarted, start=known
    )
    restarted.save()
    again = Progress.load(path, "build1")
    repeated = events_between(repo, again.last_commit, tip, "build1", again)

    assert [e.subject for e in missed if e.kind is K.MESSAGE_RECEIVED] == ["m2"]
    assert again.last_commit == tip
    assert repeated == []


def test_replay_after_a_commit_starts_there(repo: Path) -> None:
    write(repo, MESSAGES_PATH, {"messages": [note("m1")]}, "one")
    start = write(repo, MESSAGES_PATH, {"messages": [note("m1"), note("m2")]}, "two")
    write(repo, MESSAGES_PATH, {"messages": [note("m1"), note("m2"), note("m3")]}, "3")

    assert received(repo, since=start) == ["m3"]


def test_rewritten_history_compares_the_two_states_directly(repo: Path) -> None:
    write(repo, MESSAGES_PATH, {"messages": [note("m1")]}, "one")
    old = write(repo, MESSAGES_PATH, {"messages": [note("m1"), note("m2")]}, "two")
    git("reset", "--quiet", "--hard", "HEAD~1", cwd=repo)
    write(repo, MESSAGES_PATH, {"messages": [note("m1"), note("m3")]}, "other two")

    steps = list(replay(repo, "build1", since=old))

    assert len(steps) == 1
    assert [e.subject for e in steps[0].events] == ["m3"]
