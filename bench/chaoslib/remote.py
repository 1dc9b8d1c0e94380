"""What the bare remote holds, read from git objects (never from a checkout)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaoslib.fleet import git
from watcher.documents import read_blobs
from watcher.layout import ARCHIVE_DIR, JOBS_PATH, MESSAGES_PATH, is_coordination_path
from watcher.validation import Profile, check_document

HEARTBEAT_REFS = "refs/heads/heartbeat/"


@dataclass(frozen=True)
class InvalidVersion:
    commit: str
    path: str
    problem: str


class Remote:
    def __init__(self, path: Path) -> None:
        self.path = path

    def ref(self, name: str) -> str | None:
        out = git("rev-parse", "--verify", "--quiet", name, cwd=self.path, check=False)
        return out.strip() or None

    def document(self, path: str, rev: str = "main") -> Any:
        out = git("show", f"{rev}:{path}", cwd=self.path, check=False)
        try:
            return json.loads(out)
        except ValueError:
            return None

    def jobs(self, rev: str = "main") -> list[dict[str, Any]]:
        document = self.document(JOBS_PATH, rev)
        jobs = document.get("jobs") if isinstance(document, dict) else None
        return [job for job in jobs or [] if isinstance(job, dict)]

    def messages(self, rev: str = "main") -> list[dict[str, Any]]:
        """Every message record on `rev`, the archive included."""
        listing = git("ls-tree", "--name-only", "-r", rev, cwd=self.path, check=False)
        paths = [p for p in listing.splitlines() if p.startswith(ARCHIVE_DIR + "/")]
        records: list[dict[str, Any]] = []
        for path in [*paths, MESSAGES_PATH]:
            document = self.document(path, rev)
            found = document.get("messages") if isinstance(document, dict) else document
            records += [item for item in found or [] if isinstance(item, dict)]
        return records

    def heartbeat_refs(self) -> dict[str, str]:
        out = git(
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            HEARTBEAT_REFS,
            cwd=self.path,
        )
        pairs = (line.split(" ") for line in out.splitlines() if line)
        return {name.removeprefix(HEARTBEAT_REFS): sha for name, sha in pairs}

    def commit_count(self, rev: str) -> int:
        return int(git("rev-list", "--count", rev, cwd=self.path).strip())

    def merges(self) -> list[str]:
        return git("rev-list", "--min-parents=2", "--all", cwd=self.path).split()

    def has_object(self, sha: str) -> bool:
        completed = subprocess.run(
            ["git", "cat-file", "-e", sha],
            cwd=self.path,
            capture_output=True,
            check=False,
        )
        return completed.returncode == 0

    def commit_trailers(self, rev: str = "main") -> list[str]:
        """The `Build-Watcher-Operation` of every commit on `rev`."""
        out = git(
            "log",
            "--format=%(trailers:key=Build-Watcher-Operation,valueonly)",
            rev,
            cwd=self.path,
        )
        return [line.strip() for line in out.splitlines() if line.strip()]

    def invalid_versions(self, rev: str = "main") -> tuple[int, list[InvalidVersion]]:
        """Every version of every coordination file on `rev`, judged strictly.

        Returns how many commits were looked at and the failures. Each distinct
        (path, blob) pair is judged once: an unchanged file is the same version.
        """
        seen: dict[tuple[str, str], str] = {}
        commits = 0
        for commit, changes in self._changes(rev):
            commits += 1
            for path, blob in changes:
                seen.setdefault((path, blob), commit)
        contents = read_blobs(self.path, {blob for _, blob in seen})
        failures = []
        for (path, blob), commit in seen.items():
            result = check_document(path, contents[blob], Profile.STRICT)
            if not result.is_valid:
                first = result.errors[0]
                failures.append(InvalidVersion(commit, path, first.message))
        return commits, failures

    def _changes(self, rev: str) -> Iterator[tuple[str, list[tuple[str, str]]]]:
        """(commit, [(path, new blob)]) oldest first, following first parents."""
        out = git(
            "log",
            "--first-parent",
            "--reverse",
            "--root",
            "--raw",
            "--no-abbrev",
            "--no-renames",
            "--format=commit %H",
            rev,
            cwd=self.path,
        )
        commit, changes = "", list[tuple[str, str]]()
        for line in out.splitlines():
            if line.startswith("commit "):
                if commit:
                    yield commit, changes
                commit, changes = line.split()[1], []
            elif line.startswith(":"):
                meta, _, path = line.partition("\t")
                blob = meta.split()[3]
                if is_coordination_path(path) and set(blob) != {"0"}:
                    changes.append((path, blob))
        if commit:
            yield commit, changes

    def objects_containing(self, needles: list[bytes]) -> list[str]:
        """Ids of every object in the store (reachable or not) holding a needle."""
        listing = git(
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectname)",
            cwd=self.path,
        ).split()
        found = []
        for start in range(0, len(listing), 500):
            chunk = listing[start : start + 500]
            contents = read_blobs(self.path, chunk)
            found += [
                sha
                for sha, data in contents.items()
                if any(needle in data for needle in needles)
            ]
        return found
