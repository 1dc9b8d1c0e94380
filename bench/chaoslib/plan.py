"""Everything random in a run, drawn up front from one seed.

The same seed gives the same jobs (type, priority, submitting server, moment), the
same messages and the same faults at the same offsets into the run, so a failing
run can be replayed. What the processes then do with that plan depends on the
machine's timing; the seed fixes what is asked of them, not how they interleave.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field


class FaultKind(enum.Enum):
    KILL = "kill -9 mid-build"
    OUTAGE = "remote unreachable"
    INDEX_LOCK = "stale index.lock"
    BROKEN_EDIT = "hand edit breaks a file"
    CONFLICT_MARKERS = "conflict markers committed"
    MALICIOUS_JOB = "malicious branch name"
    CREDENTIAL = "credential in a message"
    BURST = "burst of jobs"
    CLOCK_JUMP = "wall-clock jump"


@dataclass(frozen=True)
class JobType:
    """A job type the servers run: a script that sleeps within a range."""

    name: str
    low: float
    high: float
    flaky: bool = False


JOB_TYPES = (
    JobType("quick", 0.2, 0.8),
    JobType("medium", 0.8, 1.8),
    JobType("slow", 1.8, 3.0),
    JobType("flaky", 0.2, 1.0, flaky=True),
)
JOB_WEIGHTS = (40, 30, 15, 15)


@dataclass(frozen=True)
class Mode:
    name: str
    servers: int
    jobs: int
    burst: int
    window: float
    messages: int
    faults: dict[FaultKind, int]
    drain_timeout: float
    recovery_timeout: float = 90.0
    cancel_share: float = 0.04


FULL = Mode(
    name="full",
    servers=4,
    jobs=200,
    burst=50,
    window=240.0,
    messages=40,
    faults={
        FaultKind.KILL: 3,
        FaultKind.OUTAGE: 3,
        FaultKind.INDEX_LOCK: 2,
        FaultKind.BROKEN_EDIT: 2,
        FaultKind.CONFLICT_MARKERS: 1,
        FaultKind.MALICIOUS_JOB: 1,
        FaultKind.CREDENTIAL: 2,
        FaultKind.BURST: 1,
        FaultKind.CLOCK_JUMP: 1,
    },
    drain_timeout=240.0,
)
SHORT = Mode(
    name="short",
    servers=3,
    jobs=12,
    burst=0,
    window=12.0,
    messages=4,
    faults={
        FaultKind.KILL: 1,
        FaultKind.OUTAGE: 1,
        FaultKind.MALICIOUS_JOB: 1,
        FaultKind.CREDENTIAL: 1,
        FaultKind.BROKEN_EDIT: 1,
    },
    drain_timeout=30.0,
    recovery_timeout=15.0,
    cancel_share=0.1,
)


@dataclass(frozen=True)
class JobSpec:
    key: int
    job_type: str
    priority: int
    server: str
    at: float
    burst: bool = False
    cancel_after: float | None = None


@dataclass(frozen=True)
class MessageSpec:
    key: int
    sender: str
    to: str
    subject: str
    message_type: str
    at: float


@dataclass(frozen=True)
class FaultSpec:
    """One fault: when, what, against which server, and its numbers."""

    key: int
    kind: FaultKind
    at: float
    target: str
    duration: float
    fleet_wide: bool = False
    offset: float = 0.0


@dataclass(frozen=True)
class Plan:
    seed: int
    mode: Mode
    servers: tuple[str, ...]
    jobs: tuple[JobSpec, ...]
    messages: tuple[MessageSpec, ...]
    faults: tuple[FaultSpec, ...]
    clock_server: str | None = None
    kinds: tuple[FaultKind, ...] = field(default=())


def make_plan(seed: int, mode: Mode) -> Plan:
    """The whole run's randomness, from `seed`."""
    rng = random.Random(seed)
    servers = tuple(f"build{n}" for n in range(1, mode.servers + 1))
    jobs = _jobs(rng, mode, servers)
    messages = _messages(rng, mode, servers)
    faults = _faults(rng, mode, servers)
    jumps = [fault for fault in faults if fault.kind is FaultKind.CLOCK_JUMP]
    clock_server = jumps[0].target if jumps else None
    kinds = tuple(kind for kind in FaultKind if mode.faults.get(kind))
    return Plan(seed, mode, servers, jobs, messages, faults, clock_server, kinds)


def _jobs(
    rng: random.Random, mode: Mode, servers: tuple[str, ...]
) -> tuple[JobSpec, ...]:
    specs = []
    regular = mode.jobs - mode.burst
    for key in range(mode.jobs):
        job_type = rng.choices(JOB_TYPES, JOB_WEIGHTS)[0].name
        is_burst = key >= regular
        at = 0.0 if is_burst else mode.window * 0.85 * key / max(1, regular)
        cancel = rng.uniform(0.0, 1.5) if rng.random() < mode.cancel_share else None
        if cancel is not None:
            job_type = "slow"  # so that the cancel finds it queued or running
        specs.append(
            JobSpec(
                key=key,
                job_type=job_type,
                priority=rng.randint(1, 10),
                server=servers[key % len(servers)] if is_burst else rng.choice(servers),
                at=round(at + rng.uniform(0.0, 0.5), 3),
                burst=is_burst,
                cancel_after=None if is_burst else cancel,
            )
        )
    return tuple(specs)


def _messages(
    rng: random.Random, mode: Mode, servers: tuple[str, ...]
) -> tuple[MessageSpec, ...]:
    specs = []
    for key in range(mode.messages):
        sender = rng.choice(servers)
        peers = [server for server in servers if server != sender]
        to = "all" if rng.random() < 0.3 else rng.choice(peers)
        is_ping = rng.random() < 0.25
        specs.append(
            MessageSpec(
                key=key,
                sender=sender,
                to=to,
                subject="ping" if is_ping else f"chaos note {key}",
                message_type="request" if is_ping else "info",
                at=round(rng.uniform(0.0, mode.window * 0.9), 3),
            )
        )
    return tuple(sorted(specs, key=lambda spec: spec.at))


def _faults(
    rng: random.Random, mode: Mode, servers: tuple[str, ...]
) -> tuple[FaultSpec, ...]:
    kinds = [kind for kind, count in mode.faults.items() for _ in range(count)]
    rng.shuffle(kinds)
    start, end = mode.window * 0.08, mode.window * 0.92
    moments = sorted(rng.uniform(start, end) for _ in kinds)
    faults = []
    for key, (kind, at) in enumerate(zip(kinds, moments, strict=True)):
        faults.append(
            FaultSpec(
                key=key,
                kind=kind,
                at=round(at, 3),
                target=rng.choice(servers),
                duration=round(_duration(rng, kind), 3),
                fleet_wide=kind is FaultKind.OUTAGE
                and mode.name == "full"
                and rng.random() < 0.34,
                offset=rng.choice((7200.0, -5400.0, 86400.0)),
            )
        )
    return tuple(faults)


def _duration(rng: random.Random, kind: FaultKind) -> float:
    """How long a fault lasts before it is undone (outages stay under the lease)."""
    ranges = {
        FaultKind.KILL: (0.5, 3.0),
        FaultKind.OUTAGE: (2.0, 6.0),
        FaultKind.BROKEN_EDIT: (2.0, 5.0),
        FaultKind.CONFLICT_MARKERS: (2.0, 5.0),
        FaultKind.CLOCK_JUMP: (10.0, 20.0),
    }
    low, high = ranges.get(kind, (0.0, 0.0))
    return rng.uniform(low, high)
