"""Liveness outside the daemon: the daemon's saved view, and how a command judges.

The daemon saves its `PeerWatch` view (`liveness.json` in the state directory)
at every liveness scan. A command (`status`, `dashboard`) has no memory of when it
saw peers' heartbeats change, so it judges like this:

1. When the saved view was written less than `stale_after` ago, it is used: each
   peer's age since its last seen change is carried forward by the time since the
   view was written, and judged again against the allowance. This is immune to
   peers' clocks (the ages were measured on the daemon's monotonic clock; only
   the carry-forward uses this machine's wall clock, over seconds).
2. Otherwise the peers' heartbeat timestamps are compared with this machine's
   clock, corrected by the clock offset the daemon last measured for that peer
   when there is one. That is only as good as the clocks, and the result carries
   a caveat saying so. A heartbeat stamped in the future beyond the allowance is
   "unknown", not alive.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from loguru import logger

from watcher.config import Config
from watcher.heartbeat import Heartbeat
from watcher.layout import server_of
from watcher.liveness import Liveness, PeerView, PeerWatch
from watcher.outbox import write_durably
from watcher.timestamps import parse_timestamp

VIEW_FILE = "liveness.json"
DAEMON = "daemon"
TIMESTAMPS = "timestamps"
TIMESTAMP_CAVEAT = (
    "the daemon's liveness view is missing or old, so liveness is judged from "
    "heartbeat timestamps against this machine's clock: a peer whose clock is off "
    "by more than the allowance shows wrongly; run `build-watcher watch` for "
    "judgement by observed change"
)


@dataclass(frozen=True)
class SavedView:
    """The daemon's judgement as saved for other processes (`status`, `dashboard`)."""

    observer: str | None
    written_at: datetime
    stale_after: float
    peers: Mapping[str, PeerView]
    recent_events: Sequence[Mapping[str, Any]] = ()
    running: bool = True

    def age(self, now: datetime) -> float:
        return (now - self.written_at).total_seconds()

    def is_fresh(self, now: datetime) -> bool:
        """Written by a daemon that still runs, within its own allowance."""
        return self.running and 0 <= self.age(now) <= self.stale_after


def view_of(
    watch: PeerWatch, recent: Sequence[Mapping[str, Any]] = (), *, running: bool = True
) -> SavedView:
    """What the watch would save now; `running` False when its daemon stops."""
    return SavedView(
        watch.me, watch.wall(), watch.stale_after, watch.views(), recent, running
    )


def save_view(path: Path, view: SavedView) -> None:
    """Write the view atomically, so a reader never sees half of it."""
    data = {
        "observer": view.observer,
        "written_at": view.written_at.isoformat(),
        "stale_after": view.stale_after,
        "peers": {name: _view_json(peer) for name, peer in view.peers.items()},
        "recent_events": list(view.recent_events),
        "running": view.running,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_durably(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def load_view(path: Path) -> SavedView | None:
    """The saved view, or None when there is none or it cannot be read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        peers = {
            name: _view_from_json(name, raw) for name, raw in data["peers"].items()
        }
        written_at = datetime.fromisoformat(data["written_at"])
        recent = [
            item for item in data.get("recent_events", []) if isinstance(item, dict)
        ]
        stale_after = float(data["stale_after"])
        running = data.get("running") is True
        return SavedView(
            data["observer"], written_at, stale_after, peers, recent, running
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        logger.warning(
            "the saved liveness view is unreadable", path=str(path), error=str(error)
        )
        return None


def _view_json(view: PeerView) -> dict[str, Any]:
    return {
        "state": view.state.value,
        "since": view.since.isoformat() if view.since else None,
        "last_change": view.last_change.isoformat() if view.last_change else None,
        "age_seconds": view.age_seconds,
        "offset_seconds": view.offset_seconds,
        "peer_timestamp": view.peer_timestamp,
    }


def _view_from_json(server: str, raw: Mapping[str, Any]) -> PeerView:
    return PeerView(
        server=server,
        state=Liveness(raw["state"]),
        since=_moment(raw.get("since")),
        last_change=_moment(raw.get("last_change")),
        age_seconds=raw.get("age_seconds"),
        offset_seconds=raw.get("offset_seconds"),
        peer_timestamp=raw.get("peer_timestamp"),
    )


def _moment(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class Judgement:
    """Liveness of every server that showed a heartbeat, and how it was judged."""

    peers: Mapping[str, PeerView]
    source: str
    caveat: str | None = None
    recent_events: Sequence[Mapping[str, Any]] = ()


def judge_saved(
    saved: SavedView, now: datetime, stale_after: float, me: str | None
) -> Judgement:
    """The daemon's view carried forward to `now`, on this machine's clock."""
    elapsed = max(0.0, saved.age(now))
    peers = {
        name: _carried(view, elapsed, stale_after) for name, view in saved.peers.items()
    }
    observer = saved.observer or me
    if observer is not None:
        peers[observer] = _myself(observer, saved.written_at)
    return Judgement(peers, DAEMON)


def judge_watch(watch: PeerWatch) -> Judgement:
    """A running daemon's own judgement; the daemon itself is alive."""
    peers = dict(watch.views())
    if watch.me is not None:
        peers[watch.me] = _myself(watch.me, watch.wall())
    return Judgement(peers, DAEMON)


def _myself(server: str, seen: datetime) -> PeerView:
    """The observer, alive by definition while it judges (no offset to itself)."""
    return PeerView(server, Liveness.ALIVE, None, seen, 0.0, None, None)


def _carried(view: PeerView, elapsed: float, stale_after: float) -> PeerView:
    if view.age_seconds is None or view.last_change is None:
        return view
    age = view.age_seconds + elapsed
    state = Liveness.ALIVE if age <= stale_after else Liveness.STALE
    since = view.since
    if state is not view.state:
        since = view.last_change + timedelta(seconds=stale_after)
    return replace(view, state=state, age_seconds=round(age, 1), since=since)


def judge_timestamps(
    stamps: Mapping[str, datetime],
    now: datetime,
    stale_after: float,
    offsets: Mapping[str, float],
) -> Judgement:
    """Liveness from the peers' own timestamps: the fallback, clock-dependent."""
    peers = {}
    for server, stamp in stamps.items():
        offset = offsets.get(server, 0.0)
        beat_at = stamp - timedelta(seconds=offset)
        age = (now - beat_at).total_seconds()
        if age < -stale_after:
            state = Liveness.UNKNOWN
        else:
            state = Liveness.ALIVE if age <= stale_after else Liveness.STALE
        since = (
            beat_at + timedelta(seconds=stale_after)
            if state is Liveness.STALE
            else None
        )
        peers[server] = PeerView(
            server, state, since, beat_at, round(age, 1), offset or None, _stamp(stamp)
        )
    return Judgement(peers, TIMESTAMPS, TIMESTAMP_CAVEAT)


def latest_timestamps(
    heartbeats: Mapping[str, Heartbeat], documents: Mapping[str, Any]
) -> dict[str, datetime]:
    """Each server's latest claim of life: its heartbeat branch, else main's copies."""
    stamps: dict[str, datetime] = {}
    for server, heartbeat in heartbeats.items():
        if heartbeat.timestamp is not None:
            stamps[server] = heartbeat.timestamp
    for path, document in documents.items():
        owner = server_of(path)
        if owner is None or owner in heartbeats:
            continue
        stamp = _document_stamp(document)
        if stamp is not None and (owner not in stamps or stamps[owner] < stamp):
            stamps[owner] = stamp
    return stamps


def _document_stamp(document: Any) -> datetime | None:
    if not isinstance(document, dict):
        return None
    return parse_timestamp(document.get("timestamp"))


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def judge(
    config: Config,
    heartbeats: Mapping[str, Heartbeat],
    documents: Mapping[str, Any],
    now: datetime,
) -> Judgement:
    """Liveness as a command sees it: the daemon's fresh view, else timestamps."""
    saved = load_view(config.state_path / VIEW_FILE)
    if saved is not None and saved.is_fresh(now):
        judged = judge_saved(saved, now, saved.stale_after, config.node)
    else:
        offsets = {
            name: view.offset_seconds
            for name, view in (saved.peers.items() if saved else ())
            if view.offset_seconds is not None
        }
        stamps = latest_timestamps(heartbeats, documents)
        judged = judge_timestamps(stamps, now, config.stale_after, offsets)
    return replace(judged, recent_events=saved.recent_events if saved else ())
