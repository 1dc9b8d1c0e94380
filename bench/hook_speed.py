"""The pre-commit hook's whole-process time against check-jsonschema, side by side.

A scratch clone of the real corpus history gets a commit's worth of changes to
three coordination files of three kinds (a job queued, a server's status and the
dashboard refreshed), staged. Then, in turns, so that a change in the machine's
speed touches both alike:

- A: `build-watcher hook pre-commit`, as git runs it (one process);
- B: check-jsonschema validating the same three files against the same bundled
  schema files: one process per schema, since it takes one schema per run.

Prints the median, min and max of each and the median of the B/A ratios.

    .venv/bin/python bench/hook_speed.py [--runs 30] [--bundle PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BUNDLE = ROOT.parent / "shared" / "corpus" / "history.bundle"
STAMP = "2025-11-08T10:00:00Z"
CHANGES = {
    "coordination/jobs.json": "jobs",
    "build1/status.json": "status",
    "shared/health_dashboard.json": "health_dashboard",
}


def git(*args: str, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def prepare(bundle: Path, scratch: Path) -> Path:
    """A clone with three coordination files changed and staged."""
    repo = scratch / "checkout"
    git("clone", "--quiet", str(bundle), str(repo), cwd=scratch)
    edit(repo / "coordination/jobs.json", queue_job)
    edit(repo / "build1/status.json", lambda doc: doc.update(timestamp=STAMP))
    edit(
        repo / "shared/health_dashboard.json", lambda doc: doc.update(updated_at=STAMP)
    )
    git("add", *CHANGES, cwd=repo)
    return repo


def edit(path: Path, change: object) -> None:
    document = json.loads(path.read_text())
    change(document)  # type: ignore[operator]
    path.write_text(json.dumps(document, indent=2) + "\n")


def queue_job(document: dict) -> None:
    job = {"id": "job_01JBENCH", "type": "build", "status": "queued", "priority": 3}
    document["jobs"].append({**job, "branch": "main", "created_at": STAMP})


def hook_command() -> list[list[str]]:
    return [[str(BIN / "build-watcher"), "hook", "pre-commit"]]


def check_jsonschema_commands() -> list[list[str]]:
    return [
        [
            str(BIN / "check-jsonschema"),
            "--schemafile",
            str(ROOT / "schemas" / f"{kind}.schema.json"),
            path,
        ]
        for path, kind in CHANGES.items()
    ]


def timed(commands: list[list[str]], repo: Path) -> float:
    """Wall seconds for the commands, one after another; each must succeed."""
    start = time.perf_counter()
    for command in commands:
        completed = subprocess.run(command, cwd=repo, capture_output=True, check=False)
        if completed.returncode != 0:
            output = completed.stdout.decode() + completed.stderr.decode()
            sys.exit(f"{command} failed:\n{output}")
    return time.perf_counter() - start


def describe(label: str, samples: list[float]) -> str:
    ms = [sample * 1000 for sample in samples]
    return (
        f"{label:<44} median {statistics.median(ms):7.1f} ms"
        f"   (min {min(ms):6.1f}, max {max(ms):6.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--bundle", type=Path, default=BUNDLE)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="hook-speed-"))
    try:
        repo = prepare(args.bundle, scratch)
        ours, theirs = hook_command(), check_jsonschema_commands()
        timed(ours, repo), timed(theirs, repo)  # warm the page cache
        pairs = [(timed(ours, repo), timed(theirs, repo)) for _ in range(args.runs)]
    finally:
        shutil.rmtree(scratch)
    touched = f"a commit touching {len(CHANGES)} coordination files"
    print(f"pre-commit hook on {touched}: {args.runs} runs each, in turns")
    print(describe("build-watcher hook pre-commit", [a for a, _ in pairs]))
    print(
        describe(
            f"check-jsonschema ({len(theirs)} processes, one per schema)",
            [b for _, b in pairs],
        )
    )
    ratio = statistics.median(b / a for a, b in pairs)
    print(f"check-jsonschema / build-watcher, median of pairs: {ratio:.2f}x")


if __name__ == "__main__":
    main()
