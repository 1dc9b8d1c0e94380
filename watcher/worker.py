"""Jobs inside the daemon: claim what this server can run, build it, report it;
requeue the jobs of silent peers; stop builds whose job moved on.

Every write happens on the dispatcher thread (event handlers and periodic tasks),
so the worker's transactions never race each other or the other features'. Builds
run on threads of their own and hand their results back through a queue that a
periodic task drains.

- Claiming: on `job.queued` and on every tick, while fewer than `concurrency` builds
  run, claim (`ClaimNext`, most urgent then oldest) a queued job whose type this
  server can run and whose labels it has. A claim is never queued offline: a claim
  replayed later would hold a job nobody here runs.
- Fencing: a build whose job was requeued, reassigned or ended by someone else
  (the snapshot shows a later attempt, another holder, or an end) is stopped and
  reports nothing; the finish is fenced by the attempt as well. A cancel request
  stops the build, which is then recorded as `cancelled`.
- Orphans: after `server.stale` for a holder (or, after a restart, its stale state
  in the saved liveness view), its running jobs are requeued once the silence (on
  this observer's clock) exceeds the job's lease plus `lease_margin`; `RequeueJob`
  fails a job whose `max_attempts` are spent.
- Finishing: the moment a build ends its result is noted in the state directory
  (`watcher.finishes`); the fenced finish is then written, and one the remote
  refused is tried again on every tick until it lands or is moot. A restart
  reports the noted results of its previous life before anything else, and a
  build that ran to its end while the daemon was down (its keeper,
  `watcher.buildexit`, noted how) is reported rather than run again.
- Reconcile: a running job held by this server that no build here runs and whose
  result is not noted (left over from a previous life) is given back, with a
  WARNING; the first tick after start does this for every such job.
- Shutdown: running builds are stopped and their jobs given back. At start, builds
  a previous life left running (it was killed) are stopped (`watcher.leftovers`).
"""

from __future__ import annotations

import enum
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loguru import logger

from watcher.build import BuildResult, ended_meanwhile, run_build
from watcher.buildrecords import FinishBuild, ReturnJob, StartJob, finish_for
from watcher.config import Config
from watcher.documents import Snapshot
from watcher.events import Event, EventKind
from watcher.finishes import forget_finish, record_finish, unreported_finishes
from watcher.joblist import ClaimNext, RequeueJob, claimable_jobs, find_job, jobs_for
from watcher.jobrecords import (
    FINISHED,
    attempt_key,
    is_cancel_requested,
    job_attempt,
    list_jobs,
)
from watcher.judgement import VIEW_FILE, SavedView, load_view
from watcher.layout import BUILD_CONFIG_PATH
from watcher.leftovers import stop_leftover_builds
from watcher.liveness import Liveness
from watcher.recipes import runnable_types
from watcher.timestamps import now_utc
from watcher.transaction import Operation, Outcome, OutcomeStatus

if TYPE_CHECKING:
    from watcher.daemon import Daemon

REPORT_INTERVAL = 0.5
WATCH_INTERVAL = 1.0
JOB_CHANGES = (
    EventKind.JOB_CLAIMED,
    EventKind.JOB_REQUEUED,
    EventKind.JOB_CANCELLED,
    EventKind.JOB_FINISHED,
)


class Stop(enum.Enum):
    """Why a running build was stopped, which decides what is written after."""

    LOST = "the job moved on"  # requeued, reassigned or ended: write nothing
    CANCEL = "cancel requested"  # record the job as cancelled
    SHUTDOWN = "the daemon is stopping"  # give the job back


@dataclass
class Run:
    """One build in progress on this server."""

    job: dict[str, Any]
    cancel: threading.Event = field(default_factory=threading.Event)
    stop: Stop | None = None
    thread: threading.Thread | None = None
    finish: FinishBuild | None = None

    @property
    def job_id(self) -> str:
        return str(self.job["id"])

    @property
    def attempt(self) -> int:
        return job_attempt(self.job)


class Worker:
    """The job behaviour of one daemon; its methods run on the dispatcher thread."""

    def __init__(
        self,
        config: Callable[[], Config],
        snapshot: Callable[[], Snapshot],
        transact: Callable[[Operation], Outcome],
        claim: Callable[[Operation], Outcome],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.snapshot = snapshot
        self.transact = transact
        self.claim = claim
        self.monotonic = monotonic
        self.node = config().require_node()
        self.runs: dict[str, Run] = {}
        self.results: queue.Queue[tuple[Run, BuildResult | None]] = queue.Queue()
        self.silent_since: dict[str, float] = {}
        self.claims_seen: dict[tuple[str, int], float] = {}
        self.settled: set[tuple[str, int]] = set()
        self.unreported: dict[tuple[str, int], FinishBuild] = {}
        self.stopped_leftovers: set[str] = set()
        self.stopping = False

    # Events and ticks.

    def on_job_queued(self, event: Event) -> None:
        self.fill_slots()

    def on_job_changed(self, event: Event) -> None:
        self.watch_runs()

    def on_server_stale(self, event: Event) -> None:
        silent = (event.record or {}).get("seconds_silent")
        seconds = float(silent) if isinstance(silent, int | float) else 0.0
        self.silent_since[event.subject] = self.monotonic() - seconds
        self.recover_orphans()

    def on_server_recovered(self, event: Event) -> None:
        self.silent_since.pop(event.subject, None)

    def restore_silences(self, view: SavedView | None) -> None:
        """Peers a previous run of this daemon judged stale stay suspect: liveness
        does not announce `server.stale` again after a restart."""
        if view is None:
            return
        wall, now = now_utc(), self.monotonic()
        for server, peer in view.peers.items():
            if peer.state is not Liveness.STALE:
                continue
            if peer.last_change is not None:
                silent = (wall - peer.last_change).total_seconds()
            elif peer.since is not None:
                silent = (wall - peer.since).total_seconds() + view.stale_after
            else:
                continue
            self.silent_since.setdefault(server, now - max(0.0, silent))

    def tick(self) -> None:
        self.watch_runs()
        self.recover_orphans()
        self.report_unreported()
        self.return_strays()
        self.fill_slots()

    # Claiming and running.

    def fill_slots(self) -> None:
        """Claim jobs while a slot is free and the snapshot shows one to take."""
        config, snapshot = self.config(), self.snapshot()
        build_config = snapshot.get(BUILD_CONFIG_PATH)
        types = tuple(sorted(runnable_types(config, build_config)))
        while not self.stopping and len(self.runs) < config.concurrency:
            if not claimable_jobs(snapshot, types, config.labels):
                return
            claim = ClaimNext(
                self.node, types, config.labels, config.concurrency, config.stale_after
            )
            outcome = self.claim(StartJob(claim))
            if outcome.status is not OutcomeStatus.DONE:
                logger.debug("nothing claimed: {why}", why=outcome.reason)
                return
            self.start(dict(outcome.result), config, build_config)

    def start(
        self,
        job: dict[str, Any],
        config: Config,
        build_config: Mapping[str, Any] | None,
    ) -> None:
        run = Run(job)
        run.thread = threading.Thread(
            target=self._build,
            args=(run, config, build_config),
            name=f"build {run.job_id}",
            daemon=True,
        )
        self.runs[run.job_id] = run
        logger.info(
            "job {job} claimed (attempt {attempt})", job=run.job_id, attempt=run.attempt
        )
        run.thread.start()

    def _build(
        self, run: Run, config: Config, build_config: Mapping[str, Any] | None
    ) -> None:
        """The build thread: its result, or None if it crashed, goes to the queue."""
        result = None
        try:
            result = run_build(run.job, config, build_config, cancel=run.cancel)
            if run.stop in (None, Stop.CANCEL):
                run.finish = finish_for(result, run.job, self.node)
                record_finish(config, run.finish)
        finally:
            self.results.put((run, result))

    def report_results(self) -> None:
        """Write what finished builds left in the queue (periodic task)."""
        reported = False
        while True:
            try:
                run, result = self.results.get_nowait()
            except queue.Empty:
                break
            self._report(run, result)
            self.runs.pop(run.job_id, None)
            self.settled.add((run.job_id, run.attempt))
            reported = True
        if reported:
            self.fill_slots()

    def _report(self, run: Run, result: BuildResult | None) -> None:
        if run.stop is Stop.LOST:
            if run.finish is not None:
                forget_finish(self.config(), run.finish)
            log = logger.bind(job=run.job_id, attempt=run.attempt)
            log.info("build stopped and not reported: the job moved on")
            return
        if run.finish is None:
            why = run.stop.value if run.stop else "the build crashed on this server"
            self.give_back(run.job, why)
            return
        self.deliver(run.finish)

    def deliver(self, finish: FinishBuild) -> None:
        """Write a noted finish; keep it for the next tick when the remote refused."""
        key = (finish.job_id, finish.attempt)
        log = logger.bind(job=finish.job_id, attempt=finish.attempt)
        outcome = self.transact(finish)
        if outcome.status is OutcomeStatus.FAILED:
            first = key not in self.unreported
            self.unreported[key] = finish
            level = "WARNING" if first else "DEBUG"
            log.log(
                level, "finish not recorded yet, retrying: {why}", why=outcome.reason
            )
            return
        self.unreported.pop(key, None)
        forget_finish(self.config(), finish)
        if outcome.status is OutcomeStatus.MOOT:
            log.info("finish not recorded: {why}", why=outcome.reason)

    def restore_unreported(self) -> None:
        """Results a previous life noted and never reported (startup task)."""
        for finish in unreported_finishes(self.config()):
            key = (finish.job_id, finish.attempt)
            self.unreported[key] = finish
            self.settled.add(key)
            logger.bind(job=key[0], attempt=key[1]).warning(
                "job {job_id} ended before the daemon was interrupted and its result "
                "was not shared yet; reporting it now rather than running it again",
                job_id=key[0],
            )
        self.report_unreported()

    def report_unreported(self) -> None:
        """Try again the finishes the remote refused (or a restart found)."""
        for finish in list(self.unreported.values()):
            self.deliver(finish)

    def give_back(self, job: Mapping[str, Any], reason: str) -> None:
        config = self.config()
        key = attempt_key(job)
        operation = ReturnJob(key[0], self.node, key[1], reason, config.max_attempts)
        outcome = self.transact(operation)
        self.settled.add(key)
        logger.bind(attempt=key[1], outcome=outcome.status.value).info(
            "job {job} given back: {why}", job=key[0], why=reason
        )

    # Keeping runs honest.

    def watch_runs(self) -> None:
        """Stop builds whose job moved on or whose cancellation was asked for."""
        snapshot = self.snapshot()
        for run in list(self.runs.values()):
            if run.stop is not None:
                continue
            stop = stop_reason(find_job(snapshot, run.job_id), self.node, run.attempt)
            if stop is not None:
                run.stop = stop
                run.cancel.set()
                logger.info(
                    "stopping the build of {job}: {why}", job=run.job_id, why=stop.value
                )

    def return_strays(self) -> None:
        """Give back running jobs held here that no build here runs."""
        for job in jobs_for(self.snapshot(), self.node):
            key = attempt_key(job)
            if key[0] in self.runs or key in self.settled or key in self.unreported:
                continue
            if self.report_ended_meanwhile(job, key):
                continue
            self.give_back(job, f"{self.node} was not running it (restarted)")
            logger.bind(job=key[0], attempt=key[1]).warning(
                "the build of job {job_id} (attempt {attempt}) was lost when {node} "
                "stopped without finishing it; the job was given back to the queue "
                "and runs again unless its attempts are spent: check `build-watcher "
                "jobs` and this server's journal for why the daemon stopped",
                job_id=key[0],
                attempt=key[1],
                node=self.node,
            )

    def stop_leftovers(self) -> None:
        """Stop builds a previous life left running (startup task): their jobs are
        given back, since how those builds would have ended is unknown."""
        self.stopped_leftovers.update(_stop_leftovers(self.config()))

    def report_ended_meanwhile(self, job: dict[str, Any], key: tuple[str, int]) -> bool:
        """Report a build that ran to its end while this daemon was down; whether
        there was one (a build stopped at start is given back instead)."""
        if key[0] in self.stopped_leftovers:
            return False
        build_config = self.snapshot().get(BUILD_CONFIG_PATH)
        result = ended_meanwhile(job, self.config(), build_config)
        if result is None:
            return False
        finish = finish_for(result, job, self.node)
        record_finish(self.config(), finish)
        self.settled.add(key)
        logger.bind(job=key[0], attempt=key[1]).warning(
            "job {job_id} ended ({status}) while the daemon was interrupted; "
            "reporting it rather than running it again",
            job_id=key[0],
            status=finish.status,
        )
        self.deliver(finish)
        return True

    def recover_orphans(self) -> None:
        """Requeue running jobs whose holder has been silent beyond their lease.

        Silence counts from the later of two moments on this daemon's clock: the
        holder's last heartbeat change, and when this daemon first saw the claim.
        A claim is a sign of life too: a server that claims right after a restart
        has not yet beaten where its peers look.
        """
        config, now = self.config(), self.monotonic()
        running = list_jobs(self.snapshot(), "running")
        self._note_claims(running, now)
        for job in running:
            holder = job.get("assigned_to")
            since = self.silent_since.get(str(holder))
            key = attempt_key(job)
            if holder == self.node or since is None or key in self.settled:
                continue
            silent = now - max(since, self.claims_seen[key])
            if silent < lease_seconds(job, config) + config.lease_margin:
                continue
            reason = f"{holder} silent for {silent:.0f} s"
            self.transact(RequeueJob(key[0], key[1], reason, config.max_attempts))
            self.settled.add(key)
            logger.bind(holder=holder).warning(
                "orphan {job} requeued: {why}", job=key[0], why=reason
            )

    def _note_claims(self, running: Sequence[Mapping[str, Any]], now: float) -> None:
        """Remember when each running attempt was first seen; forget ended ones."""
        keys = {attempt_key(job) for job in running}
        self.claims_seen = {key: self.claims_seen.get(key, now) for key in keys}

    def shut_down(self) -> None:
        """Stop every build and give its job back (runs after the dispatcher)."""
        self.stopping = True
        for run in self.runs.values():
            run.stop = run.stop or Stop.SHUTDOWN
            run.cancel.set()
        grace = self.config().kill_grace
        for run in list(self.runs.values()):
            if run.thread is not None:
                run.thread.join(timeout=grace + 30)
        self.report_results()


def stop_reason(
    record: Mapping[str, Any] | None, node: str, attempt: int
) -> Stop | None:
    """Whether the snapshot shows that a build of `attempt` must stop.

    Only positive evidence counts: the snapshot may predate the claim (the job still
    queued on the same attempt, or not there at all), and that is no reason.
    """
    if record is None:
        return None
    if job_attempt(record) > attempt:
        return Stop.LOST
    if job_attempt(record) < attempt:
        return None
    if record.get("status") in FINISHED:
        return Stop.LOST
    if record.get("status") == "running" and record.get("assigned_to") != node:
        return Stop.LOST
    if record.get("status") == "running" and is_cancel_requested(record):
        return Stop.CANCEL
    return None


def lease_seconds(job: Mapping[str, Any], config: Config) -> float:
    lease = job.get("lease")
    seconds = lease.get("seconds") if isinstance(lease, Mapping) else None
    return float(seconds) if isinstance(seconds, int | float) else config.stale_after


def install(daemon: Daemon) -> None:
    """Register the worker's handlers and tasks with the daemon."""
    worker = Worker(
        lambda: daemon.config,
        lambda: daemon.snapshot,
        daemon.transact,
        lambda operation: daemon.transact(operation, offline_ok=False),
    )
    daemon.add_handler(EventKind.JOB_QUEUED, worker.on_job_queued)
    for kind in JOB_CHANGES:
        daemon.add_handler(kind, worker.on_job_changed)
    daemon.add_handler(EventKind.SERVER_STALE, worker.on_server_stale)
    daemon.add_handler(EventKind.SERVER_RECOVERED, worker.on_server_recovered)
    daemon.add_periodic("job results", REPORT_INTERVAL, worker.report_results)
    daemon.add_periodic("job watch", WATCH_INTERVAL, worker.watch_runs)
    daemon.add_periodic("jobs", daemon.config.poll_interval, worker.tick)
    daemon.add_startup(
        lambda: worker.stopped_leftovers.update(_stop_leftovers(daemon.config))
    )
    view_path = daemon.config.state_path / VIEW_FILE
    daemon.add_startup(lambda: worker.restore_silences(load_view(view_path)))
    daemon.add_startup(worker.restore_unreported)
    daemon.add_shutdown(worker.shut_down)


def _stop_leftovers(config: Config) -> list[str]:
    stopped = stop_leftover_builds(config)
    if stopped:
        logger.bind(jobs=stopped).warning("stopped builds left from before a restart")
    return stopped
