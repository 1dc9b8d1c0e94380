"""Benchmark: claiming jobs through transactions, against the naive git workflow.

    .venv/bin/python bench/transactions.py [--jobs 40] [--writers 1 4 8] [--rounds 3]

A local bare remote is seeded with JOBS queued jobs; W writer processes, each with
its own clone, claim jobs until none is left:

- transaction: `transact(ClaimNext(...))` (fetch, apply to the tip, commit in a
  private index, plain push, again on rejection);
- naive: what shell scripts did: pull, take the first queued job in the working
  tree's JSON, commit, push; on rejection pull again (a text merge, committing
  whatever it produced, markers included) and push again.

Printed for each: claims per second, pushes retried per claim, and the damage:
duplicates (jobs two writers both believe they claimed), losses (claims a writer
believes it made that the final remote state does not show) and invalid commits
(commits on the remote branch whose coordination files fail strict validation).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from watcher.documents import dump_document, read_snapshot  # noqa: E402
from watcher.joblist import SubmitJob  # noqa: E402
from watcher.layout import JOBS_PATH, empty_documents  # noqa: E402
from watcher.validation import Profile  # noqa: E402

NAIVE_RETRIES = 5


@dataclass
class WriterReport:
    node: str
    claimed: list[str]
    pushes: int
    broken: bool = False


def git(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.invalid")
    env.update(GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.invalid")
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=check
    )


def seed_remote(root: Path, jobs: int) -> Path:
    """A bare remote whose main holds the empty layout plus `jobs` queued jobs."""
    remote = root / "remote.git"
    git("init", "-q", "--bare", "-b", "main", str(remote), cwd=root)
    work = root / "seed"
    git("init", "-q", "-b", "main", str(work), cwd=root)
    documents: dict[str, Any] = dict(empty_documents())
    requests = [SubmitJob(type="build", branch="main") for _ in range(jobs)]
    documents[JOBS_PATH] = {"jobs": [r.record("submitter") for r in requests]}
    for path, value in documents.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_bytes(dump_document(value))
    git("add", "-A", cwd=work)
    git("commit", "-qm", "seed", cwd=work)
    git("push", "-q", str(remote), "main", cwd=work)
    return remote


def clone(remote: Path, root: Path, node: str) -> Path:
    target = root / node
    git("clone", "-q", str(remote), str(target), cwd=root)
    (target / ".build_server_id").write_text(node + "\n")
    return target


def wait_until(moment: float) -> None:
    while time.time() < moment:
        time.sleep(0.005)


def transaction_writer(checkout: str, node: str, start_at: float) -> WriterReport:
    from watcher.config import load_config
    from watcher.joblist import ClaimNext
    from watcher.transaction import OutcomeStatus, transact

    quiet_logs()
    config = load_config(checkout, node)
    claim = ClaimNext(node, ("build",), slots=10**6)
    report = WriterReport(node, [], 0)
    wait_until(start_at)
    failures = 0
    while failures < 5:
        outcome = transact(config, claim, offline_ok=False)
        report.pushes += outcome.attempts
        if outcome.status is OutcomeStatus.DONE:
            report.claimed.append(outcome.result["id"])
        elif outcome.status is OutcomeStatus.MOOT:
            break
        else:
            failures += 1
    return report


def quiet_logs() -> None:
    """Retries are logged at DEBUG; a benchmark prints only its figures."""
    from loguru import logger

    logger.remove()


def naive_writer(checkout: str, node: str, start_at: float) -> WriterReport:
    work = Path(checkout)
    report = WriterReport(node, [], 0)
    wait_until(start_at)
    for _ in range(200):
        naive_pull(work)
        try:
            document = json.loads((work / JOBS_PATH).read_text())
        except ValueError:
            report.broken = True  # the scripts' jq would stop here too
            break
        queued = [job for job in document["jobs"] if job.get("status") == "queued"]
        if not queued:
            break
        job = queued[0]
        job.update(status="running", assigned_to=node, attempt=1)
        job["started_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        (work / JOBS_PATH).write_text(json.dumps(document, indent=2) + "\n")
        git("commit", "-qam", f"{node}: claim {job['id']}", cwd=work)
        if naive_push(work, report):
            report.claimed.append(job["id"])
    return report


def naive_pull(work: Path) -> None:
    """`git pull`, and when the text merge conflicts, commit what it left."""
    pulled = git("pull", "-q", "--no-rebase", "--no-edit", cwd=work, check=False)
    if pulled.returncode != 0:
        git("add", "-A", cwd=work)
        git("commit", "-qm", "merge", cwd=work, check=False)


def naive_push(work: Path, report: WriterReport) -> bool:
    for _ in range(NAIVE_RETRIES):
        report.pushes += 1
        if git("push", "-q", "origin", "main", cwd=work, check=False).returncode == 0:
            return True
        naive_pull(work)
    return False


@dataclass
class RunResult:
    claims: int
    seconds: float
    retries_per_claim: float
    duplicates: int
    losses: int
    invalid_commits: int
    commits: int


def run_writers(mode: str, writers: int, jobs: int) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="bench-tx-") as scratch:
        root = Path(scratch)
        remote = seed_remote(root, jobs)
        nodes = [f"build{n + 1}" for n in range(writers)]
        checkouts = [str(clone(remote, root, node)) for node in nodes]
        target = transaction_writer if mode == "transaction" else naive_writer
        start_at = time.time() + 2.0
        context = multiprocessing.get_context("spawn")
        with context.Pool(writers) as pool:
            arguments = [
                (c, n, start_at) for c, n in zip(checkouts, nodes, strict=True)
            ]
            reports = pool.starmap(target, arguments)
        seconds = time.time() - start_at
        return judge(remote, reports, seconds)


def judge(remote: Path, reports: list[WriterReport], seconds: float) -> RunResult:
    claims = Counter(job for report in reports for job in report.claimed)
    final = final_holders(remote)
    losses = sum(
        1
        for report in reports
        for job in report.claimed
        if final is None or final.get(job) != report.node
    )
    commits = git("rev-list", "main", cwd=remote).stdout.split()
    invalid = sum(
        1
        for commit in commits
        if read_snapshot(remote, commit, profile=Profile.STRICT).problems
    )
    total = sum(claims.values())
    pushes = sum(report.pushes for report in reports)
    return RunResult(
        claims=total,
        seconds=seconds,
        retries_per_claim=(pushes - total) / total if total else float("nan"),
        duplicates=sum(1 for count in claims.values() if count > 1),
        losses=losses,
        invalid_commits=invalid,
        commits=len(commits),
    )


def final_holders(remote: Path) -> dict[str, str] | None:
    """Job id to holder on the remote's final state; None when it does not parse."""
    text = git("show", f"main:{JOBS_PATH}", cwd=remote).stdout
    try:
        jobs = json.loads(text)["jobs"]
    except (ValueError, KeyError, TypeError):
        return None
    return {job["id"]: job.get("assigned_to") for job in jobs if job.get("assigned_to")}


def combine(results: list[RunResult]) -> RunResult:
    """Several rounds of one configuration: damage summed, rates over all rounds."""
    claims = sum(r.claims for r in results)
    retries = sum(r.retries_per_claim * r.claims for r in results if r.claims)
    return RunResult(
        claims=claims,
        seconds=sum(r.seconds for r in results),
        retries_per_claim=retries / claims if claims else float("nan"),
        duplicates=sum(r.duplicates for r in results),
        losses=sum(r.losses for r in results),
        invalid_commits=sum(r.invalid_commits for r in results),
        commits=sum(r.commits for r in results),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--rounds", type=int, default=3, help="runs per configuration")
    args = parser.parse_args()
    print(
        f"{args.jobs} queued jobs on a local bare remote, {args.rounds} rounds per "
        f"line (damage summed over them); {os.cpu_count()} CPUs"
    )
    print(
        f"{'mode':<12}{'writers':>8}{'claims':>8}{'claims/s':>10}{'retries/claim':>15}"
        f"{'duplicates':>12}{'losses':>8}{'invalid commits':>17}"
    )
    for mode in ("transaction", "naive"):
        for writers in args.writers:
            rounds = [run_writers(mode, writers, args.jobs) for _ in range(args.rounds)]
            result = combine(rounds)
            print(
                f"{mode:<12}{writers:>8}{result.claims:>8}"
                f"{result.claims / result.seconds:>10.1f}"
                f"{result.retries_per_claim:>15.2f}{result.duplicates:>12}"
                f"{result.losses:>8}"
                f"{result.invalid_commits:>11} of {result.commits:<4}",
                flush=True,
            )


if __name__ == "__main__":
    main()
