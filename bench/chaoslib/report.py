"""The figures of a run, computed once, printed as a table or as JSON."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from chaoslib.daemons import read_records
from chaoslib.invariants import Check, RunData
from chaoslib.plan import FaultKind
from chaoslib.remote import Remote


def compute(data: RunData, checks: list[Check], seconds: float) -> dict[str, Any]:
    plan = data.fleet.plan
    states = Counter(str(job.get("status")) for job in data.remote_jobs)
    finished = sum(states[s] for s in ("completed", "failed", "cancelled"))
    said = _log_counts(data)
    remote = Remote(data.fleet.remote)
    operations = Counter(remote.commit_trailers())
    submissions = data.ledger.jobs + data.ledger.messages
    return {
        "seed": plan.seed,
        "mode": plan.mode.name,
        "servers": len(plan.servers),
        "seconds": round(seconds, 1),
        "jobs": {
            "asked": len(data.ledger.jobs),
            "accepted": len(data.ledger.accepted_jobs()),
            "hostile": len(data.findings.hostile_jobs),
            "states": dict(states),
            "per_minute": round(finished / (seconds / 60), 1) if seconds else 0.0,
        },
        "messages": {
            "asked": len(data.ledger.messages),
            "accepted": len(data.ledger.accepted_messages()),
            "automatic_replies": sum(
                1 for m in data.remote_messages if m.get("automated") is True
            ),
        },
        "cancels": {
            "asked": len(data.ledger.cancels),
            "accepted": sum(1 for s in data.ledger.cancels if s.code == 0),
        },
        "pushes_retried": {
            "daemons": said["push refused"],
            "commands": sum(max(0, s.attempts - 1) for s in submissions),
        },
        "offline_replays": said["queued operation landed"],
        "commits_on_main": sum(operations.values()) + 1,
        "commits_by_operation": dict(operations.most_common()),
        "faults": _fault_rows(data),
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
        "ok": all(check.ok for check in checks),
    }


def _log_counts(data: RunData) -> Counter[str]:
    counts: Counter[str] = Counter()
    for node in data.fleet.plan.servers:
        for record in read_records(data.fleet.log_path(node)):
            message = str(record.get("message", ""))
            for phrase in ("push refused", "queued operation landed"):
                if message.startswith(phrase):
                    counts[phrase] += 1
    return counts


def _fault_rows(data: RunData) -> list[dict[str, Any]]:
    rows = []
    for kind in FaultKind:
        records = [r for r in data.faults if r.kind is kind]
        if not records:
            continue
        times = [r.recovery_seconds for r in records if r.recovery_seconds is not None]
        rows.append(
            {
                "kind": kind.value,
                "injected": len(records),
                "recovered": len(times),
                "recovery_min": min(times) if times else None,
                "recovery_median": round(statistics.median(times), 2)
                if times
                else None,
                "recovery_max": max(times) if times else None,
                "targets": [r.target for r in records],
                "notes": [note for r in records for note in r.notes],
                "problems": [p for r in records for p in r.problems],
            }
        )
    return rows


def render(report: dict[str, Any]) -> str:
    jobs, messages = report["jobs"], report["messages"]
    lines = [
        f"chaos run: seed {report['seed']}, {report['mode']} mode, "
        f"{report['servers']} servers, {report['seconds']} s",
        "",
        f"  jobs asked / accepted / hostile   {jobs['asked']} / {jobs['accepted']} / "
        f"{jobs['hostile']}",
        f"  jobs by final state               {_states(jobs['states'])}",
        f"  jobs per minute                   {jobs['per_minute']}",
        f"  messages asked / accepted         {messages['asked']} / "
        f"{messages['accepted']}"
        f"  (+{messages['automatic_replies']} automatic replies)",
        f"  cancels asked / accepted          {report['cancels']['asked']} / "
        f"{report['cancels']['accepted']}",
        f"  pushes retried (daemons, commands) {report['pushes_retried']['daemons']}, "
        f"{report['pushes_retried']['commands']}",
        f"  operations replayed from offline  {report['offline_replays']}",
        f"  commits on main                   {report['commits_on_main']}",
        "",
        _fault_table(report["faults"]),
        "",
        _check_table(report["checks"]),
        "",
        f"result: {'PASS' if report['ok'] else 'FAIL'} (seed {report['seed']})",
    ]
    return "\n".join(lines)


def _states(states: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(states.items()))


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _fault_table(rows: list[dict[str, Any]]) -> str:
    header = f"  {'fault':<28} {'n':>2} {'ok':>3} {'recovery s (min/med/max)':>26}"
    lines = ["faults injected", header]
    for row in rows:
        spread = "/".join(
            _seconds(row[key])
            for key in ("recovery_min", "recovery_median", "recovery_max")
        )
        counts = f"{row['injected']:>2} {row['recovered']:>3}"
        lines.append(f"  {row['kind']:<28} {counts} {spread:>26}")
        lines += [f"      ! {problem}" for problem in row["problems"]]
    return "\n".join(lines)


def _check_table(checks: list[dict[str, Any]]) -> str:
    lines = ["invariants checked"]
    for check in checks:
        mark = "ok  " if check["ok"] else "FAIL"
        lines.append(f"  {mark} {check['name']}")
        lines.append(f"       {check['detail']}")
    return "\n".join(lines)
