"""One injector per kind of fault; each undoes its fault and measures the recovery.

A fault is injected at a moment of the run's clock, undone (`resolved`) the way an
operator or the machine would (the remote comes back, systemd restarts the
daemon, a person restores a file), and counts as recovered when the product has
visibly caught up again (the condition is stated per kind below). Promises found
broken on the way are `problems`; the log offsets taken before and after let the
end of the run look for what each fault made the daemons say.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from chaoslib.daemons import Daemons
from chaoslib.fleet import Fleet, git
from chaoslib.plan import FaultKind, FaultSpec
from chaoslib.remote import Remote
from chaoslib.workload import Ledger, submit_burst
from watcher.documents import dump_document
from watcher.ids import new_id
from watcher.layout import JOBS_PATH, MESSAGES_PATH, status_path
from watcher.timestamps import format_timestamp, now_utc

FINISHED = ("completed", "failed", "cancelled")
LOCK_PATIENCE = 45.0


@dataclass
class FaultRecord:
    spec: FaultSpec
    target: str
    started: float
    resolved: float | None = None
    recovered: float | None = None
    marks: dict[str, int] = field(default_factory=dict)
    end_marks: dict[str, int] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> FaultKind:
        return self.spec.kind

    @property
    def recovery_seconds(self) -> float | None:
        if self.recovered is None:
            return None
        return round(self.recovered - self.started, 2)


def until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@dataclass
class Findings:
    """What faults leave for the final checks."""

    hostile_jobs: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    local_commits: list[str] = field(default_factory=list)
    owned: Path = Path("/tmp/owned")


class Injector:
    def __init__(
        self,
        fleet: Fleet,
        daemons: Daemons,
        ledger: Ledger,
        clock: Callable[[], float],
    ) -> None:
        self.fleet = fleet
        self.daemons = daemons
        self.ledger = ledger
        self.clock = clock
        self.remote = Remote(fleet.remote)
        self.patience = fleet.plan.mode.recovery_timeout
        self.rng = random.Random(fleet.plan.seed * 7919)
        self.findings = Findings(owned=Path(f"/tmp/owned-{fleet.plan.seed}"))
        self.table: dict[FaultKind, Callable[[FaultRecord], None]] = {
            FaultKind.KILL: self.kill,
            FaultKind.OUTAGE: self.outage,
            FaultKind.INDEX_LOCK: self.index_lock,
            FaultKind.BROKEN_EDIT: self.broken_edit,
            FaultKind.CONFLICT_MARKERS: self.conflict_markers,
            FaultKind.MALICIOUS_JOB: self.malicious_job,
            FaultKind.CREDENTIAL: self.credential,
            FaultKind.BURST: self.burst,
            FaultKind.CLOCK_JUMP: self.clock_jump,
        }

    def run(self, spec: FaultSpec) -> FaultRecord:
        record = FaultRecord(spec, spec.target, self.clock(), marks=self.marks())
        self.table[spec.kind](record)
        record.end_marks = self.marks()
        if record.recovered is None:
            record.problems.append(
                f"not recovered within {self.patience:.0f} s of being undone"
            )
        return record

    def marks(self) -> dict[str, int]:
        paths = {node: self.fleet.log_path(node) for node in self.fleet.plan.servers}
        return {n: p.stat().st_size if p.exists() else 0 for n, p in paths.items()}

    def _recovered_when(
        self, record: FaultRecord, condition: Callable[[], bool]
    ) -> None:
        if until(condition, self.patience):
            record.recovered = self.clock()

    # kill -9 mid-build, then systemd's restart. Recovered: every job the killed
    # daemon was running has left that attempt (given back, requeued or finished).

    def kill(self, record: FaultRecord) -> None:
        node = self._busy_server(record.spec.target)
        record.target = node
        running = self._running_on(node)
        pid = self.daemons.kill(node)
        record.notes.append(
            f"killed pid {pid} while it ran {sorted(running) or 'nothing'}"
        )
        time.sleep(record.spec.duration)
        seconds = self.daemons.restart(node)
        record.resolved = self.clock()
        record.notes.append(f"restarted, ready after {seconds:.1f} s")
        self._recovered_when(record, lambda: not running & self._running_on(node))

    def _busy_server(self, preferred: str) -> str:
        """A server whose build script is running right now (from the build ledger:
        started, not ended, process alive), the preferred one if it has one.

        A build whose script has ended but whose finish is not pushed yet is not
        "mid-build": killing then is another fault (see the report's notes).
        """
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            busy = builds_in_progress(self.fleet.ledger)
            if preferred in busy:
                return preferred
            candidates = sorted(n for n in busy if self.daemons.is_running(n))
            if candidates:
                return self.rng.choice(candidates)
            time.sleep(0.1)
        return preferred

    def _running(self) -> list[dict[str, object]]:
        return [job for job in self.remote.jobs() if job.get("status") == "running"]

    def _running_on(self, node: str) -> set[tuple[str, int]]:
        return {
            (str(job.get("id")), int(str(job.get("attempt", 1))))
            for job in self._running()
            if job.get("assigned_to") == node
        }

    # The remote unreachable for one server (its link renamed away) or for all.
    # Recovered: each cut-off server's offline queue is empty again and it has
    # published a heartbeat since the remote came back.

    def outage(self, record: FaultRecord) -> None:
        spec = record.spec
        nodes = list(self.fleet.plan.servers) if spec.fleet_wide else [spec.target]
        record.target = "all" if spec.fleet_wide else spec.target
        links = [self.fleet.links / f"{node}.git" for node in nodes]
        for link in links:
            link.rename(link.with_name(link.name + ".away"))
        time.sleep(spec.duration)
        queued = {node: len(self.fleet.outbox_entries(node)) for node in nodes}
        for link in links:
            link.with_name(link.name + ".away").rename(link)
        record.resolved = self.clock()
        record.notes.append(f"offline queues at the end of the outage: {queued}")
        before = self.remote.heartbeat_refs()
        self._recovered_when(record, lambda: self._caught_up(nodes, before))
        left = {n: len(self.fleet.outbox_entries(n)) for n in nodes}
        if any(left.values()):
            record.problems.append(f"offline queue entries never sent: {left}")

    def _caught_up(self, nodes: list[str], before: dict[str, str]) -> bool:
        beats = self.remote.heartbeat_refs()
        return all(
            not self.fleet.outbox_entries(node) and beats.get(node) != before.get(node)
            for node in nodes
        )

    # A stale .git/index.lock (a git that crashed an hour ago). Recovered: the
    # lock is gone; the product removes a provably stale one, else a person does
    # once the warning told them to.

    def index_lock(self, record: FaultRecord) -> None:
        lock = self.fleet.checkouts[record.target] / ".git" / "index.lock"
        # Created as git creates it (O_EXCL): while a live git holds the lock, a
        # plain write would become that git's new index when it renames the lock.
        if not until(lambda: _create_exclusively(lock), LOCK_PATIENCE):
            record.problems.append(f"{lock} never came free to plant")
            return
        an_hour_ago = time.time() - 3600
        os.utime(lock, (an_hour_ago, an_hour_ago))
        if until(lambda: not lock.exists(), LOCK_PATIENCE):
            record.resolved = record.recovered = self.clock()
            record.notes.append("removed by the product")
            return
        lock.unlink(missing_ok=True)
        record.resolved = record.recovered = self.clock()
        record.notes.append(f"still there after {LOCK_PATIENCE:.0f} s; removed by hand")

    # A person's hand edit that breaks a coordination file in the working tree,
    # then `git checkout -- FILE`. Recovered: the checkout fast-forwarded past
    # the remote's tip as it was when the file was restored.

    def broken_edit(self, record: FaultRecord) -> None:
        node = record.target
        choices = [JOBS_PATH, MESSAGES_PATH, status_path(node)]
        path = self.rng.choice([p for p in choices if self._tracked(node, p)])
        target = self.fleet.checkouts[node] / path
        data = target.read_bytes()
        target.write_bytes(data[: max(1, len(data) // 2)])
        record.notes.append(
            f"{path} cut to {max(1, len(data) // 2)} of {len(data)} bytes"
        )
        time.sleep(record.spec.duration)
        self._person(node, record, "checkout", "--", path)
        record.resolved = self.clock()
        tip = self.remote.ref("main")
        self._recovered_when(record, lambda: self._contains(node, tip))

    def _tracked(self, node: str, path: str) -> bool:
        return (self.fleet.checkouts[node] / path).is_file()

    def _contains(self, node: str, commit: str | None) -> bool:
        """Whether `node`'s checkout has been brought along past `commit`."""
        if commit is None:
            return False
        args = ("merge-base", "--is-ancestor", commit, "HEAD")
        return self.fleet.person_git(node, *args).returncode == 0

    def _person(self, node: str, record: FaultRecord, *args: str) -> int:
        """git as the person types it, again while another git holds index.lock."""
        for _ in range(50):
            done = self.fleet.person_git(node, *args)
            if "index.lock" not in done.stderr:
                break
            time.sleep(0.1)
        if done.returncode != 0:
            record.notes.append(f"git {args[0]}: {done.stderr.strip()[:200]}")
        return done.returncode

    # Conflict markers in messages.json: `git commit -am` (the hook must refuse),
    # then `git commit --no-verify` (a person insisting), which must stay local;
    # later `git reset --hard` to the remote's tip. Recovered: as for a hand edit.

    def conflict_markers(self, record: FaultRecord) -> None:
        node = record.target
        target = self.fleet.checkouts[node] / MESSAGES_PATH
        text = target.read_text()
        target.write_text(f"<<<<<<< HEAD\n{text}=======\n{text}>>>>>>> origin/main\n")
        hooked = self.fleet.person_git(node, "commit", "-am", "Merge the messages")
        record.evidence.append(hooked.stdout + hooked.stderr)
        if hooked.returncode == 0:
            record.problems.append("the pre-commit hook let conflict markers through")
        else:
            self._person(node, record, "commit", "--no-verify", "-qam", "Merge by hand")
        local = git("rev-parse", "HEAD", cwd=self.fleet.checkouts[node]).strip()
        self.findings.local_commits.append(local)
        time.sleep(record.spec.duration)
        self._person(node, record, "reset", "-q", "--hard", "refs/remotes/origin/main")
        record.resolved = self.clock()
        tip = self.remote.ref("main")
        self._recovered_when(record, lambda: self._contains(node, tip))

    # Jobs with a malicious branch: the command line must refuse them; written by
    # hand into the queue (someone with push access), every daemon must refuse to
    # run them. Recovered: both hostile jobs ended (failed, with a reason).

    def malicious_job(self, record: FaultRecord) -> None:
        owned = self.findings.owned
        branches = [f"x; touch {owned}", f"--upload-pack=touch {owned}"]
        for branch in branches:
            result = self.fleet.cli(
                record.target, "submit", "--type", "quick", "--branch", branch
            )
            record.evidence.append(result.stderr)
            if result.code == 0:
                record.problems.append(f"submit accepted branch {branch!r}")
        ids = self._push_hostile_jobs(branches)
        self.findings.hostile_jobs += ids
        record.resolved = self.clock()
        self._recovered_when(record, lambda: self._all_finished(ids))
        for job in self.remote.jobs():
            if job.get("id") in ids and not (
                job.get("status") == "failed" and job.get("reason")
            ):
                record.problems.append(f"hostile job ended {job.get('status')}: {job}")

    def _all_finished(self, ids: list[str]) -> bool:
        status = {job.get("id"): job.get("status") for job in self.remote.jobs()}
        return all(status.get(job_id) in FINISHED for job_id in ids)

    def _push_hostile_jobs(self, branches: list[str]) -> list[str]:
        """Append the jobs with plain git from a scratch clone, as a person could."""
        scratch = self.fleet.root / "intruder"
        env = self.fleet.env()
        if not scratch.exists():
            git(
                "clone",
                "-q",
                str(self.fleet.remote),
                str(scratch),
                cwd=self.fleet.root,
                env=env,
            )
        ids = [new_id("job") for _ in branches]
        for _ in range(50):
            git("fetch", "-q", "origin", "main", cwd=scratch, env=env)
            git("reset", "-q", "--hard", "origin/main", cwd=scratch, env=env)
            document = (scratch / JOBS_PATH).read_text()
            jobs = json.loads(document)
            jobs["jobs"] += [
                _hostile(job_id, b) for job_id, b in zip(ids, branches, strict=True)
            ]
            (scratch / JOBS_PATH).write_bytes(dump_document(jobs))
            git("commit", "-qam", "Add two jobs", cwd=scratch, env=env)
            git("push", "-q", "origin", "HEAD:main", cwd=scratch, env=env, check=False)
            if self.remote.ref("main") == git("rev-parse", "HEAD", cwd=scratch).strip():
                return ids
            time.sleep(self.rng.uniform(0.05, 0.3))
        raise RuntimeError("could not push the hostile jobs in 50 tries")

    # A credential in a message body: `send` must refuse it and not print it.

    def credential(self, record: FaultRecord) -> None:
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        token = "ghp_" + "".join(self.rng.choice(letters) for _ in range(36))
        password = f"Chaos{self.fleet.plan.seed}Pw" + "".join(
            self.rng.choice(letters) for _ in range(12)
        )
        self.findings.secrets += [token, password]
        body = f"the deploy token is {token}\npassword={password}\n"
        result = self.fleet.cli(
            record.target, "send", "--to", "all", "--subject", "deploy access",
            "--body", body, "--format", "json",
        )  # fmt: skip
        record.evidence.append(result.stderr)
        record.resolved = record.recovered = self.clock()
        if result.code == 0:
            record.problems.append("send accepted a body holding a credential")
        if token in result.stdout + result.stderr or password in result.stderr:
            record.problems.append("the refusal printed the credential")

    # Fifty submissions at once, as parallel processes spread over every server.
    # Recovered: every accepted job is on the remote's main branch.

    def burst(self, record: FaultRecord) -> None:
        specs = [spec for spec in self.fleet.plan.jobs if spec.burst]
        record.target = "all"
        submissions = submit_burst(self.fleet, specs)
        for item in submissions:
            self.ledger.add("jobs", item)
        refused = [s for s in submissions if s.code != 0]
        if refused:
            record.problems.append(
                f"{len(refused)} of {len(submissions)} submissions failed; "
                f"first: {refused[0].detail}"
            )
        tries = sorted(s.attempts for s in submissions)
        record.notes.append(f"pushes per submission: min {tries[0]}, max {tries[-1]}")
        record.resolved = self.clock()
        ids = {s.record_id for s in submissions if s.code == 0}
        self._recovered_when(
            record, lambda: ids <= {j.get("id") for j in self.remote.jobs()}
        )

    # The wall clock of one server's processes jumps (hours, either way) and is
    # set right again later. Nothing may change: no peer judges it stale.

    def clock_jump(self, record: FaultRecord) -> None:
        node = self.fleet.plan.clock_server or record.target
        record.target = node
        before = self.remote.heartbeat_refs().get(node)
        self.fleet.clock_file.write_text(f"{record.spec.offset}\n")
        time.sleep(record.spec.duration)
        moved = self.remote.heartbeat_refs().get(node) != before
        self.fleet.clock_file.write_text("0\n")
        record.resolved = record.recovered = self.clock()
        record.notes.append(
            f"jumped by {record.spec.offset:+.0f} s for {record.spec.duration} s"
        )
        if not moved:
            record.problems.append(
                f"{node} published no heartbeat while its clock was off"
            )


def builds_in_progress(ledger: Path) -> set[str]:
    """Servers with a job script that started, has not ended, and still runs."""
    if not ledger.exists():
        return set()
    running: dict[str, str] = {}
    for line in ledger.read_text().splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[1] == "start":
            running[parts[3]] = parts[2]
        elif len(parts) == 5:
            running.pop(parts[3], None)
    return {node for pid, node in running.items() if psutil.pid_exists(int(pid))}


def _hostile(job_id: str, branch: str) -> dict[str, object]:
    return {
        "id": job_id,
        "type": "quick",
        "priority": 1,
        "description": "written into the queue by hand",
        "branch": branch,
        "commit": None,
        "status": "queued",
        "assigned_to": None,
        "attempt": 1,
        "submitted_by": "intruder",
        "created_at": format_timestamp(now_utc()),
        "started_at": None,
        "completed_at": None,
    }


def _create_exclusively(path: Path) -> bool:
    """Create an empty `path` unless it exists; whether this call created it."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    return True
