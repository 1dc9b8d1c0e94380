"""Git hooks on real repositories: install, chain, uninstall, and real commits."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, git
from watcher.documents import dump_document
from watcher.githooks import HOOK_NAMES, hook_script, install_hooks, uninstall_hooks
from watcher.layout import empty_documents
from watcher.main import main

BIN = Path(sys.executable).parent
NOW = "2025-11-08T10:00:00Z"
JOB = {
    "id": "j1",
    "type": "build",
    "status": "queued",
    "priority": 1,
    "created_at": NOW,
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    checkout = tmp_path / "checkout"
    git("init", "--quiet", str(checkout), cwd=tmp_path)
    for path, value in empty_documents().items():
        write(checkout, path, value)
    git("add", "-A", cwd=checkout)
    git("commit", "--quiet", "-m", "layout", cwd=checkout)
    return checkout


def write(repo: Path, path: str, value: object) -> None:
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(value if isinstance(value, bytes) else dump_document(value))


def commit(repo: Path, *args: str, path: str = "") -> subprocess.CompletedProcess[str]:
    """A real `git commit`, with build-watcher on PATH only through `path`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["PATH"] = path or f"{BIN}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        ["git", "commit", "--quiet", "-m", "change", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def hooks(repo: Path, action: str) -> int:
    return main(["--repo", str(repo), "hooks", action])


def test_the_project_hook_scripts_are_the_installed_ones() -> None:
    for name in HOOK_NAMES:
        script = PROJECT_ROOT / "hooks" / name
        assert script.read_text() == hook_script(name)
        assert os.access(script, os.X_OK)


def test_install_writes_every_hook_and_registers_the_merge_driver(repo: Path) -> None:
    assert hooks(repo, "install") == 0
    for name in HOOK_NAMES:
        assert (repo / ".git/hooks" / name).read_text() == hook_script(name)
    assert "merge-driver" in git("config", "merge.build-watcher.driver", cwd=repo)


def test_install_twice_changes_nothing(repo: Path) -> None:
    install_hooks(repo)
    again = install_hooks(repo)
    assert {change.action.name for change in again} == {"UNCHANGED"}
    assert not list((repo / ".git/hooks").glob("*.local"))


def test_an_existing_hook_is_chained_and_restored(repo: Path) -> None:
    existing = repo / ".git/hooks/pre-commit"
    existing.write_text("#!/bin/sh\necho existing hook ran >&2\nexit 0\n")
    existing.chmod(0o755)
    changes = {c.name: c.action.name for c in install_hooks(repo)}
    assert changes["pre-commit"] == "CHAINED"
    write(repo, "coordination/jobs.json", {"jobs": [JOB]})
    git("add", "-A", cwd=repo)
    done = commit(repo)
    assert done.returncode == 0 and "existing hook ran" in done.stderr
    uninstall_hooks(repo)
    assert existing.read_text().startswith("#!/bin/sh\necho existing hook ran")
    assert not (repo / ".git/hooks/pre-commit.local").exists()
    assert not (repo / ".git/hooks/post-merge").exists()


def test_a_refusing_chained_hook_stops_the_commit(repo: Path) -> None:
    existing = repo / ".git/hooks/pre-commit"
    existing.write_text("#!/bin/sh\nexit 3\n")
    existing.chmod(0o755)
    install_hooks(repo)
    write(repo, "coordination/jobs.json", {"jobs": [JOB]})
    git("add", "-A", cwd=repo)
    assert commit(repo).returncode != 0


def test_uninstall_leaves_a_foreign_hook_alone(repo: Path) -> None:
    foreign = repo / ".git/hooks/post-merge"
    foreign.write_text("#!/bin/sh\n")
    changes = {c.name: c.action.name for c in uninstall_hooks(repo)}
    assert changes["post-merge"] == "NOT_OURS" and foreign.exists()


def test_install_follows_core_hooks_path(repo: Path) -> None:
    git("config", "core.hooksPath", "shared-hooks", cwd=repo)
    install_hooks(repo)
    assert (repo / "shared-hooks/pre-commit").read_text() == hook_script("pre-commit")


def test_the_installed_hook_refuses_an_invalid_commit(repo: Path) -> None:
    install_hooks(repo)
    write(repo, "coordination/jobs.json", {"jobs": [dict(JOB, status="done")]})
    git("add", "-A", cwd=repo)
    refused = commit(repo)
    assert refused.returncode == 1
    assert (
        "commit refused: 1 of 1 staged coordination file is invalid" in refused.stderr
    )
    assert "coordination/jobs.json:6:17: $.jobs[0].status" in refused.stderr
    assert "build-watcher validate --staged" in refused.stderr
    assert git("rev-list", "--count", "HEAD", cwd=repo).strip() == "1"


def test_the_installed_hook_lets_a_valid_commit_through(repo: Path) -> None:
    install_hooks(repo)
    write(repo, "coordination/jobs.json", {"jobs": [JOB]})
    git("add", "-A", cwd=repo)
    done = commit(repo)
    assert done.returncode == 0, done.stderr
    assert git("rev-list", "--count", "HEAD", cwd=repo).strip() == "2"


def test_commit_all_is_judged_on_the_index_git_prepared(repo: Path) -> None:
    install_hooks(repo)
    write(repo, "coordination/jobs.json", b'{"jobs": [],}')
    refused = commit(repo, "-a")
    assert refused.returncode == 1
    assert "[trailing-comma]" in refused.stderr


def test_untouched_legacy_records_do_not_block_a_commit(repo: Path) -> None:
    legacy = dict(JOB, created_at="2025-11-08 10:00")
    write(repo, "coordination/jobs.json", {"jobs": [legacy]})
    git("commit", "--quiet", "--no-verify", "-am", "legacy", cwd=repo)
    install_hooks(repo)
    write(repo, "coordination/jobs.json", {"jobs": [legacy, dict(JOB, id="j2")]})
    assert commit(repo, "-a").returncode == 0


def test_without_build_watcher_the_pre_commit_hook_says_how_to_install(
    repo: Path,
) -> None:
    install_hooks(repo)
    write(repo, "coordination/jobs.json", {"jobs": [JOB]})
    git("add", "-A", cwd=repo)
    git_dir = Path(subprocess.check_output(["which", "git"], text=True).strip()).parent
    refused = commit(repo, path=f"{git_dir}{os.pathsep}/bin")
    assert refused.returncode == 1
    assert "pip install build-watcher" in refused.stderr


def test_post_hooks_return_quietly_without_a_daemon(repo: Path) -> None:
    for name in ("post-merge", "post-checkout", "post-rewrite"):
        completed = subprocess.run(
            [str(BIN / "build-watcher"), "hook", name],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
        )
        assert (completed.returncode, completed.stdout, completed.stderr) == (0, "", "")


def test_a_checkout_wakes_the_daemon_through_the_installed_hook(repo: Path) -> None:
    from watcher.config import load_config
    from watcher.wake import WakeListener

    woken: queue.Queue[str] = queue.Queue()
    listener = WakeListener(load_config(str(repo)).state_path, woken.put)
    listener.start()
    install_hooks(repo)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        ["git", "checkout", "--quiet", "-b", "side"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        assert (done.returncode, done.stderr) == (0, "")
        assert woken.get(timeout=10) == "post-checkout"
    finally:
        listener.stop()
