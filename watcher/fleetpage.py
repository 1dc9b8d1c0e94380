"""The fleet view as one static HTML page, for a person or a web server.

The page is self-contained: inline styles, no script, no font or image to fetch,
and a Content-Security-Policy that forbids every request, so it can be opened
from disk or published as is. Every value from the repository is escaped. A
stale server's row is marked (`data-liveness="stale"`) and tinted.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from watcher.dashboard import overall_status
from watcher.fleet import FleetView, ServerRow
from watcher.liveness import Liveness
from watcher.timestamps import format_timestamp


def describe_age(seconds: float | None) -> str:
    """A short age such as `42s`, `5m`, `3h`, `2d`; `-` when unknown."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def describe_since(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    age = describe_age((now - moment).total_seconds())
    return f"{format_timestamp(moment)} ({age} ago)"


_STYLE = """
:root{--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--muted:#6e7781;--line:#d0d7de;
--bg:#f6f8fa;--card:#fff;--ink:#1f2328}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{background:#24292f;color:#fff;padding:20px 32px}
header h1{margin:0;font-size:22px;display:flex;gap:12px;align-items:center}
header p{margin:6px 0 0;color:#d0d7de}
.caveat{background:#fff8c5;color:#4d2d00;padding:8px 12px;border-radius:6px}
main{padding:20px 32px;display:grid;gap:20px;max-width:1280px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;
padding:16px 20px;overflow-x:auto}
h2{margin:0 0 12px;font-size:16px}
h2 small{color:var(--muted);font-weight:normal;margin-left:8px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);
vertical-align:top;white-space:nowrap}
th{color:var(--muted);font-weight:600;font-size:12px;text-transform:uppercase}
td.wrap{white-space:normal}
tr.stale td{background:#ffebe9}
tr.stale td:first-child{box-shadow:inset 4px 0 0 var(--bad)}
.badge{display:inline-block;padding:1px 10px;border-radius:12px;font-size:12px;
font-weight:600;color:#fff;background:var(--muted)}
.badge.alive,.badge.healthy{background:var(--ok)}
.badge.stale,.badge.down{background:var(--bad)}
.badge.degraded{background:var(--warn)}
.chips{display:flex;gap:8px;flex-wrap:wrap;margin-bottom:12px}
.chip{border:1px solid var(--line);border-radius:6px;padding:4px 10px}
.empty{color:var(--muted)}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
"""
_POLICY = "default-src 'none'; style-src 'unsafe-inline'"


def render_page(fleet: FleetView) -> str:
    """The whole page, as one string of HTML."""
    overall = overall_status(fleet.servers)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Build fleet: {overall}</title><style>{_STYLE}</style></head><body>",
        _header(fleet, overall),
        "<main>",
        _servers_section(fleet),
        _jobs_section(fleet),
        _locks_section(fleet),
        _messages_section(fleet),
        _events_section(fleet),
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"


def _header(fleet: FleetView, overall: str) -> str:
    commit = f" · commit <code>{_e((fleet.commit or '-')[:12])}</code>"
    seen = f"As seen by {_e(fleet.observer or 'no server')} at "
    caveat = fleet.judgement.caveat
    return (
        f'<header><h1>Build fleet <span class="badge {overall}" id="overall">'
        f"{overall}</span></h1><p>{seen}{format_timestamp(fleet.generated_at)}"
        f"{commit} · liveness from {_e(fleet.judgement.source)}</p>"
        + (f'<p class="caveat">{_e(caveat)}</p>' if caveat else "")
        + "</header>"
    )


def _servers_section(fleet: FleetView) -> str:
    counts = " · ".join(
        f"{len(fleet.servers_in(state))} {state.value}" for state in Liveness
    )
    rows = [
        (
            f' class="{row.liveness.value}" data-server="{_e(row.server)}"'
            f' data-liveness="{row.liveness.value}"',
            _server_cells(row, fleet.generated_at),
        )
        for row in fleet.servers
    ]
    return _section("servers", "Servers", counts, _SERVER_HEADINGS, rows)


def _server_cells(row: ServerRow, now: datetime) -> list[str]:
    system = row.system or {}
    return [
        f"<strong>{_e(row.server)}</strong>",
        f'<span class="badge {row.liveness.value}">{row.liveness.value}</span>',
        _e(describe_since(row.since, now)),
        _e(row.last_heartbeat or "-"),
        _e(row.status or "-"),
        _e(row.current_job or "-"),
        *(_e(system.get(key, "-")) for key in _METRICS),
        _e(_offset(row.offset_seconds)),
    ]


_METRICS = ("cpu_usage", "memory_used_gb", "disk_free_gb")
_SERVER_HEADINGS = (
    "Server",
    "Liveness",
    "Since",
    "Last heartbeat",
    "Status",
    "Job",
    "CPU %",
    "Memory GB",
    "Disk free GB",
    "Clock offset",
)


def _jobs_section(fleet: FleetView) -> str:
    chips = "".join(
        f'<span class="chip">{_e(state)}: <strong>{len(rows)}</strong></span>'
        for state, rows in sorted(fleet.jobs.items())
    )
    shown = [*fleet.jobs.get("running", []), *fleet.jobs.get("queued", [])]
    heads = ("Job", "Type", "State", "Priority", "Branch", "Holder", "Created")
    rows = [
        (
            "",
            [
                _e(j.id),
                _e(j.type),
                _e(j.status),
                _e(j.priority),
                _e(j.branch),
                _e(j.assigned_to),
                _e(j.created_at),
            ],
        )
        for j in shown
    ]
    lead = f'<div class="chips">{chips}</div>'
    return _section("jobs", "Jobs", "running and queued", heads, rows, lead=lead)


def _locks_section(fleet: FleetView) -> str:
    heads = ("Lock", "Holder", "Locked at", "Expires at")
    rows = [
        (
            "",
            [
                _e(lock.name),
                _e(lock.holder),
                _e(lock.locked_at),
                _e(lock.expires_at) + (" (past)" if lock.is_expired else ""),
            ],
        )
        for lock in fleet.locks
    ]
    return _section("locks", "Held locks", f"{len(rows)} held", heads, rows)


def _messages_section(fleet: FleetView) -> str:
    heads = ("When", "From", "To", "Subject")
    rows = [
        (
            "",
            [
                _e(m.timestamp),
                _e(m.sender),
                _e(m.to),
                f'<td class="wrap">{_e(m.subject)}',
            ],
        )
        for m in fleet.messages
    ]
    note = f"{len(fleet.unread)} unread for {fleet.observer}" if fleet.observer else ""
    return _section("messages", "Recent messages", note, heads, rows)


def _events_section(fleet: FleetView) -> str:
    heads = ("When", "Event", "Subject", "By")
    rows = [
        ("", [_e(e.when), f"<code>{_e(e.kind)}</code>", _e(e.subject), _e(e.actor)])
        for e in fleet.events
    ]
    return _section("events", "Recent events", "", heads, rows)


def _section(
    anchor: str,
    title: str,
    note: str,
    heads: tuple[str, ...],
    rows: list[Any],
    *,
    lead: str = "",
) -> str:
    head = "".join(f"<th>{_e(text)}</th>" for text in heads)
    if rows:
        body = "".join(
            f"<tr{attributes}>" + "".join(_cell(cell) for cell in cells) + "</tr>"
            for attributes, cells in rows
        )
        table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    else:
        table = '<p class="empty">None.</p>'
    heading = f"<h2>{title}<small>{_e(note)}</small></h2>{lead}"
    return f'<section id="{anchor}">{heading}{table}</section>'


def _cell(html_text: str) -> str:
    return html_text if html_text.startswith("<td") else f"<td>{html_text}</td>"


def _offset(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:+.1f} s"


def _e(value: Any) -> str:
    return html.escape("-" if value is None else str(value), quote=True)
