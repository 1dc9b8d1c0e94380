"""What the filesystem source watches in a checkout, and which changes count.

Never all of `.git`: it holds objects, logs and (by default) the workspaces where
builds run, thousands of directories of noise. Watched are the top of the
working tree (non-recursively), each top-level directory (recursively), the git
directory itself (HEAD, packed-refs, index.lock) and `refs/`. Of git's files only
those that show HEAD or a branch moved count; in the working tree, coordination
JSON files count, and editors' swap, backup and temporary files never do.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from watcher.gitrepo import run_git
from watcher.hints import HintKind
from watcher.layout import is_coordination_path

# Only what shows that HEAD or a branch moved; objects, logs and lock files are noise.
_GIT_SIGNALS = re.compile(r"^(HEAD|packed-refs|refs/(heads|remotes)/.+)(?<!\.lock)$")
# Editors' swap, backup, lock and write-test files, and partial downloads.
_EDITOR_FILES = re.compile(
    r"(^\.|^#.*#$|~$|\.sw[a-p]$|\.sw[x-z]$|\.tmp$|\.part$|\.bak$|^4913$|\.orig$)"
)


def is_editor_file(name: str) -> bool:
    """Swap, backup, lock and temporary files that editors and tools leave behind."""
    return bool(_EDITOR_FILES.search(name))


@dataclass(frozen=True)
class WatchPlan:
    """What to watch in one checkout: never all of `.git`, which holds workspaces."""

    worktree: Path
    git_dir: Path
    refs_dir: Path
    excluded: frozenset[Path] = frozenset()

    @classmethod
    def for_checkout(cls, repo: Path, excluded: Iterable[Path] = ()) -> WatchPlan:
        out = run_git(["rev-parse", "--absolute-git-dir", "--git-common-dir"], cwd=repo)
        git_dir, common = out.decode().splitlines()[:2]
        common_dir = (repo / common).resolve()
        return cls(
            repo.resolve(), Path(git_dir), common_dir / "refs", frozenset(excluded)
        )

    def watches(self) -> list[tuple[Path, bool]]:
        """(directory, recursive) pairs: the tree's top level, each directory, git."""
        planned = [(self.worktree, False), (self.git_dir, False)]
        planned.extend((path, True) for path in self.top_directories())
        if self.refs_dir.is_dir():
            planned.append((self.refs_dir, True))
        return planned

    def top_directories(self) -> list[Path]:
        with os.scandir(self.worktree) as entries:
            return sorted(
                Path(entry.path)
                for entry in entries
                if entry.is_dir(follow_symlinks=False)
                and self.is_watched_top(entry.path)
            )

    def is_watched_top(self, path: str) -> bool:
        candidate = Path(path)
        return (
            candidate.parent == self.worktree
            and not candidate.name.startswith(".")
            and candidate != self.git_dir
            and candidate not in self.excluded
        )

    def classify(self, path: str) -> tuple[HintKind, str] | None:
        """The hint a changed absolute path stands for, with its relative path."""
        candidate = Path(path)
        for git_root in (self.git_dir, self.refs_dir.parent):
            if candidate.is_relative_to(git_root):
                relative = candidate.relative_to(git_root).as_posix()
                return (
                    (HintKind.REFS, relative) if _GIT_SIGNALS.match(relative) else None
                )
        if not candidate.is_relative_to(self.worktree):
            return None
        relative = candidate.relative_to(self.worktree).as_posix()
        parts = PurePosixPath(relative).parts
        if any(is_editor_file(part) for part in parts) or not is_coordination_path(
            relative
        ):
            return None
        return HintKind.FILES, relative

    @property
    def index_lock(self) -> Path:
        return self.git_dir / "index.lock"
