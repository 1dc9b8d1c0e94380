"""The promises checked at the end of a run, each a named check with evidence."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaoslib.daemons import Slot, read_records
from chaoslib.faults import FINISHED, FaultRecord, Findings
from chaoslib.fleet import CommandNote, Fleet
from chaoslib.plan import FaultKind
from chaoslib.remote import Remote
from chaoslib.workload import Ledger

WARNING = 30
SHOWN = 5
# What a daemon (or the command a person ran) says about each kind of fault.
PHRASES: dict[FaultKind, str] = {
    FaultKind.KILL: r"given back|interrupted|not running it|is stale|orphan|unclean",
    FaultKind.OUTAGE: r"cannot be reached|unreachable|offline|not published|queued",
    FaultKind.INDEX_LOCK: r"index\.lock",
    FaultKind.BROKEN_EDIT: r"edited in the checkout|not committed",
    FaultKind.CONFLICT_MARKERS: (
        r"conflict marker|does not have|remote lacks|not committed"
    ),
    FaultKind.MALICIOUS_JOB: r"job refused|not a valid branch|read as an option",
    FaultKind.CREDENTIAL: r"credential|secret|password|token",
    FaultKind.CLOCK_JUMP: r"clock",
}
# Faults a person meets at the command line: the command's error is the evidence.
SEEN_AT_COMMAND = {
    FaultKind.CREDENTIAL,
    FaultKind.MALICIOUS_JOB,
    FaultKind.CONFLICT_MARKERS,
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class RunData:
    fleet: Fleet
    ledger: Ledger
    faults: list[FaultRecord]
    findings: Findings
    slots: dict[str, Slot]
    exits: dict[str, int]
    remote_jobs: list[dict[str, Any]] = field(default_factory=list)
    remote_messages: list[dict[str, Any]] = field(default_factory=list)
    completions: Counter[str] = field(default_factory=Counter)

    @classmethod
    def collect(cls, data: RunData) -> RunData:
        remote = Remote(data.fleet.remote)
        data.remote_jobs = remote.jobs()
        data.remote_messages = remote.messages()
        data.completions = ledger_completions(data.fleet.ledger)
        return data


def ledger_completions(path: Path) -> Counter[str]:
    """How many times each job's script ran to its end, from the build ledger."""
    if not path.exists():
        return Counter()
    words = (line.split() for line in path.read_text().splitlines())
    return Counter(parts[0] for parts in words if len(parts) > 1 and parts[1] == "done")


def _shown(items: list[Any]) -> str:
    extra = f" (and {len(items) - SHOWN} more)" if len(items) > SHOWN else ""
    return "; ".join(map(str, items[:SHOWN])) + extra


def check_jobs_end_once(data: RunData) -> Check:
    expected = set(data.ledger.accepted_jobs()) | set(data.findings.hostile_jobs)
    counts = Counter(str(job.get("id")) for job in data.remote_jobs)
    by_id = {str(job.get("id")): job for job in data.remote_jobs}
    missing = sorted(expected - set(counts))
    doubled = sorted(job_id for job_id, n in counts.items() if n > 1)
    unknown = sorted(set(counts) - expected)
    unfinished = sorted(
        f"{job_id} {job.get('status')}"
        for job_id, job in by_id.items()
        if job.get("status") not in FINISHED
    )
    silent = sorted(
        job_id
        for job_id, job in by_id.items()
        if job.get("status") == "failed" and not job.get("reason")
    )
    problems = [
        f"missing: {_shown(missing)}" if missing else "",
        f"twice in the queue: {_shown(doubled)}" if doubled else "",
        f"not submitted by the run: {_shown(unknown)}" if unknown else "",
        f"still queued or running: {_shown(unfinished)}" if unfinished else "",
        f"failed without a reason: {_shown(silent)}" if silent else "",
    ]
    problems = [p for p in problems if p]
    states = Counter(str(job.get("status")) for job in data.remote_jobs)
    detail = "; ".join(problems) or f"{len(expected)} jobs: {dict(states)}"
    return Check(
        "every job ended exactly once (completed, failed or cancelled)",
        not problems,
        detail,
    )


def check_ran_once(data: RunData) -> Check:
    twice = sorted(f"{job} x{n}" for job, n in data.completions.items() if n > 1)
    completed = [
        str(j.get("id")) for j in data.remote_jobs if j.get("status") == "completed"
    ]
    unrun = sorted(job_id for job_id in completed if data.completions[job_id] == 0)
    problems = []
    if twice:
        problems.append(f"ran to completion more than once: {_shown(twice)}")
    if unrun:
        problems.append(f"completed without its script finishing: {_shown(unrun)}")
    detail = (
        "; ".join(problems)
        or f"{sum(data.completions.values())} completions, none twice"
    )
    return Check("no job ran to completion twice", not problems, detail)


def check_messages_once(data: RunData) -> Check:
    sent = data.ledger.accepted_messages()
    counts = Counter(str(record.get("id")) for record in data.remote_messages)
    missing = sorted(m for m in sent if counts[m] == 0)
    doubled = sorted(m for m in set(sent) if counts[m] > 1)
    replies = Counter(
        (record.get("reply_to"), record.get("from"))
        for record in data.remote_messages
        if record.get("automated") is True
    )
    echoes = sorted(f"{key} x{n}" for key, n in replies.items() if n > 1)
    problems = [
        f"lost: {_shown(missing)}" if missing else "",
        f"duplicated: {_shown(doubled)}" if doubled else "",
        f"answered twice automatically: {_shown(echoes)}" if echoes else "",
    ]
    problems = [p for p in problems if p]
    detail = "; ".join(problems) or (
        f"{len(sent)} sent, each present once; "
        f"{sum(replies.values())} automatic replies"
    )
    return Check("every message sent is present once", not problems, detail)


def check_history(data: RunData) -> list[Check]:
    remote = Remote(data.fleet.remote)
    commits, invalid = remote.invalid_versions()
    shown = [f"{v.commit[:10]} {v.path}: {v.problem}" for v in invalid]
    merges = remote.merges()
    beats = remote.heartbeat_refs()
    counts = {node: remote.commit_count(sha) for node, sha in beats.items()}
    long = {node: n for node, n in counts.items() if n != 1}
    absent = sorted(set(data.fleet.plan.servers) - set(beats))
    return [
        Check(
            "every commit on main passes strict validation",
            not invalid,
            _shown(shown) if invalid else f"{commits} commits",
        ),
        Check(
            "history is linear",
            not merges,
            f"merge commits: {_shown(merges)}" if merges else "no merge commits",
        ),
        Check(
            "each heartbeat branch holds one commit",
            not long and not absent,
            f"longer: {long}; missing: {absent}"
            if long or absent
            else f"{len(counts)} branches, one commit each",
        ),
    ]


def check_daemons(data: RunData) -> list[Check]:
    unexpected = {n: s.unexpected for n, s in data.slots.items() if s.unexpected}
    unclean = {n: code for n, code in data.exits.items() if code != 0}
    crashes = []
    for node in data.fleet.plan.servers:
        for record in read_records(data.fleet.log_path(node)):
            if record.get("exception"):
                crashes.append(f"{node}: {record.get('message')}")
    restarts = {n: s.starts - 1 for n, s in data.slots.items()}
    return [
        Check(
            "no daemon died for good",
            not unexpected and not unclean,
            f"unexpected exits {unexpected}; unclean stops {unclean}"
            if unexpected or unclean
            else f"restarts {restarts}; every stop exit 0",
        ),
        Check(
            "no handler crashed with a traceback",
            not crashes,
            _shown(crashes) if crashes else "none in any log",
        ),
    ]


def fault_logged(fleet: Fleet, record: FaultRecord) -> bool:
    """A WARNING or worse matching the fault's phrase, in its window, or the error
    the command printed to the person who ran it."""
    pattern = re.compile(PHRASES[record.kind], re.IGNORECASE)
    if record.kind in SEEN_AT_COMMAND and any(
        pattern.search(e) for e in record.evidence
    ):
        return True
    if any(pattern.search(note.stderr) for note in _notes_within(fleet, record)):
        return True
    for node, start in record.marks.items():
        end = record.end_marks.get(node)
        for entry in read_records(fleet.log_path(node), start, end):
            level = entry.get("level")
            number = level.get("no", 0) if isinstance(level, dict) else 0
            if number >= WARNING and pattern.search(str(entry.get("message", ""))):
                return True
    return False


def _notes_within(fleet: Fleet, record: FaultRecord) -> list[CommandNote]:
    """Commands run on the fault's server that ended while the fault lasted: a
    command that brought the checkout along may have met the fault first."""
    start = record.marks.get(record.target, 0)
    end = record.end_marks.get(record.target)
    return [
        note
        for note in fleet.command_notes
        if note.node == record.target
        and note.log_offset >= start
        and (end is None or note.log_offset <= end)
    ]


def check_faults(data: RunData) -> list[Check]:
    logged = [r for r in data.faults if r.kind in PHRASES]
    silent = [
        f"#{r.spec.key} {r.kind.value} on {r.target}"
        for r in logged
        if not fault_logged(data.fleet, r)
    ]
    broken = [
        f"#{r.spec.key} {r.kind.value} on {r.target}: {'; '.join(r.problems)}"
        for r in data.faults
        if r.problems
    ]
    return [
        Check(
            "each fault shows at WARNING or above (or as the command's error)",
            not silent,
            f"not shown: {_shown(silent)}" if silent else f"{len(logged)} faults shown",
        ),
        Check(
            "each fault was survived and recovered from",
            not broken,
            _shown(broken) if broken else f"{len(data.faults)} faults",
        ),
    ]


def check_security(data: RunData) -> list[Check]:
    remote = Remote(data.fleet.remote)
    needles = [secret.encode() for secret in data.findings.secrets]
    holding = remote.objects_containing(needles) if needles else []
    leaked = [sha for sha in data.findings.local_commits if remote.has_object(sha)]
    owned = data.findings.owned
    return [
        Check(
            "nothing was executed from the malicious jobs",
            not owned.exists(),
            f"{owned} exists" if owned.exists() else f"{owned} absent",
        ),
        Check(
            "the credential never reached the remote",
            not holding,
            f"objects holding it: {_shown(holding)}"
            if holding
            else f"{len(needles)} secrets, in no object of the remote",
        ),
        Check(
            "commits a person made by hand stayed local",
            not leaked,
            f"on the remote: {leaked}"
            if leaked
            else f"{len(data.findings.local_commits)} local commits, none pushed",
        ),
    ]


def check_outboxes(data: RunData) -> Check:
    left = {n: len(data.fleet.outbox_entries(n)) for n in data.fleet.plan.servers}
    left = {n: count for n, count in left.items() if count}
    return Check(
        "every offline queue was emptied",
        not left,
        f"entries left: {left}" if left else "all empty",
    )


CHECKS: list[Callable[[RunData], Check | list[Check]]] = [
    check_jobs_end_once,
    check_ran_once,
    check_messages_once,
    check_outboxes,
    check_history,
    check_daemons,
    check_faults,
    check_security,
]


def run_checks(data: RunData) -> list[Check]:
    checks: list[Check] = []
    for check in CHECKS:
        result = check(data)
        checks += result if isinstance(result, list) else [result]
    return checks
