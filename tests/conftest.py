"""Shared fixtures: real git repositories and remotes in temporary directories."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from watcher.documents import dump_document
from watcher.layout import empty_documents

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CORPUS_BUNDLE = PROJECT_ROOT.parent / "shared" / "corpus" / "history.bundle"


def git(*args: str, cwd: Path | str) -> str:
    """Run git in a test, returning stdout; fails the test with stderr on error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    completed = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {completed.stderr}")
    return completed.stdout


def checkout_at(directory: Path) -> Path:
    """`directory` made a (still empty) checkout: configurations are read in one."""
    git("init", "--quiet", str(directory), cwd=directory)
    return directory


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A HOME with a git identity, so no test reads or writes the user's settings."""
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test Person\n\temail = person@example.invalid\n"
        '[init]\n\tdefaultBranch = main\n[protocol "file"]\n\tallow = always\n'
    )
    saved = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    os.environ.pop("BUILD_WATCHER_CONFIG", None)
    yield home
    if saved is not None:
        os.environ["HOME"] = saved


@pytest.fixture(scope="session")
def corpus_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of the real coordination history (read-only by convention)."""
    if not CORPUS_BUNDLE.is_file():
        pytest.fail(f"the corpus bundle is missing: {CORPUS_BUNDLE}")
    target = tmp_path_factory.mktemp("corpus") / "history"
    git("clone", "--quiet", str(CORPUS_BUNDLE), str(target), cwd=target.parent)
    return target


@dataclass
class Fleet:
    """A bare remote seeded with an empty coordination layout, and its checkouts."""

    root: Path
    remote: Path
    checkouts: dict[str, Path] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.remote.as_uri()

    def clone(self, node: str) -> Path:
        target = self.root / node
        git("clone", "--quiet", self.url, str(target), cwd=self.root)
        (target / ".build_server_id").write_text(node + "\n")
        exclude = target / ".git" / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a") as handle:
            handle.write(".build_server_id\n")
        self.checkouts[node] = target
        return target

    def remote_file(self, path: str, rev: str = "main") -> str:
        return git("show", f"{rev}:{path}", cwd=self.remote)

    def remote_log(self, rev: str = "main") -> list[str]:
        return git("log", "--format=%H", rev, cwd=self.remote).split()

    def push_by_hand(self, path: str, text: str) -> None:
        """A person writes `text` to `path`, commits past any hook and pushes."""
        person = self.checkouts.get("person") or self.clone("person")
        git("pull", "--quiet", "--ff-only", cwd=person)
        (person / path).write_text(text)
        git("commit", "--quiet", "--no-verify", "-am", f"{path} by hand", cwd=person)
        git("push", "--quiet", "origin", "main", cwd=person)


def seed_remote(remote: Path, scratch: Path) -> None:
    """Create `remote` as a bare repository whose main holds the empty layout."""
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote), cwd=scratch)
    work = scratch / "seed"
    git("init", "--quiet", "--initial-branch=main", str(work), cwd=scratch)
    for path, value in empty_documents().items():
        target = work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(dump_document(value))
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "Create the coordination layout", cwd=work)
    git("push", "--quiet", remote.as_uri(), "main", cwd=work)


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    remote = tmp_path / "remote.git"
    seed_remote(remote, tmp_path)
    return Fleet(tmp_path, remote)
