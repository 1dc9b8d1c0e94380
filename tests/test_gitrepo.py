"""The git layer against real repositories: pushes judged flag by flag, remote
failures told apart, private indexes, and the checkout's index.lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Fleet, git
from watcher import gitrepo, process, remoterefs
from watcher.config import Config
from watcher.errors import UsageError, WatcherError
from watcher.heartbeat import commit_heartbeat, heartbeat_document, push_heartbeat
from watcher.joblist import SubmitJob
from watcher.remoterefs import PushStatus, RemoteAccessDenied, RemoteUnreachable
from watcher.timestamps import now_utc
from watcher.transaction import transact
from watcher.worktree import RepositoryLocked, is_stale_lock, wait_for_index_lock

TRACKING = "refs/remotes/origin/main"


def new_commit(checkout: Path, parent: str, text: str) -> str:
    index = checkout / ".git" / "scratch-index"
    tree = gitrepo.write_tree(checkout, parent, {"note.txt": text.encode()}, index)
    identity = gitrepo.identity_environment("build1", "build1@build-watcher.invalid")
    return gitrepo.commit_tree(checkout, tree, parent, f"note {text}", identity)


def tip_of(checkout: Path) -> str:
    tip = remoterefs.fetch_branch(checkout, "origin", "main", TRACKING)
    assert tip is not None
    return tip


def test_a_fast_forward_push_is_pushed_and_a_stale_one_rejected(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")
    base = tip_of(checkout)
    first, second = new_commit(checkout, base, "a"), new_commit(checkout, base, "b")

    assert remoterefs.push_commit(checkout, "origin", first, "main").status is (
        PushStatus.PUSHED
    )
    stale = remoterefs.push_commit(checkout, "origin", second, "main")
    assert stale.status is PushStatus.REJECTED
    assert fleet.remote_log()[0] == first


def test_pushing_the_tip_again_is_reported_up_to_date(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")
    tip = tip_of(checkout)

    result = remoterefs.push_commit(checkout, "origin", tip, "main")

    assert result.status is PushStatus.UP_TO_DATE


def test_a_hook_refusal_on_the_remote_is_remote_rejected(fleet: Fleet) -> None:
    hook = fleet.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho no writes today >&2\nexit 1\n")
    hook.chmod(0o755)
    checkout = fleet.clone("build1")
    commit = new_commit(checkout, tip_of(checkout), "a")

    result = remoterefs.push_commit(checkout, "origin", commit, "main")

    assert result.status is PushStatus.REMOTE_REJECTED


def test_fetching_a_branch_the_remote_lacks_gives_none(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")

    assert (
        remoterefs.fetch_branch(checkout, "origin", "nothing", "refs/x/nothing") is None
    )


def test_a_remote_that_is_gone_is_unreachable_for_fetch_and_push(
    fleet: Fleet,
) -> None:
    checkout = fleet.clone("build1")
    commit = new_commit(checkout, tip_of(checkout), "a")
    fleet.remote.rename(fleet.remote.with_name("elsewhere.git"))

    with pytest.raises(RemoteUnreachable, match="cannot be reached"):
        remoterefs.fetch_branch(checkout, "origin", "main", TRACKING)
    with pytest.raises(RemoteUnreachable):
        remoterefs.push_commit(checkout, "origin", commit, "main")


def test_a_misspelt_remote_name_is_a_setting_to_fix_not_an_outage(
    fleet: Fleet,
) -> None:
    checkout = fleet.clone("build1")

    with pytest.raises(UsageError, match="no remote named 'orgin'"):
        remoterefs.fetch_branch(checkout, "orgin", "main", TRACKING)


def test_refused_credentials_are_access_denied_not_an_outage() -> None:
    error = gitrepo.GitError(
        ["git", "fetch"],
        128,
        "git@host: Permission denied (publickey).\n"
        "fatal: Could not read from remote repository.\n",
    )

    judged = remoterefs.remote_failure(error, "origin")

    assert isinstance(judged, RemoteAccessDenied)
    assert "Permission denied" in judged.message


def test_a_private_index_leaves_the_checkout_index_alone(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")
    (checkout / "staged.txt").write_text("staged by a person\n")
    git("add", "staged.txt", cwd=checkout)
    index_before = (checkout / ".git" / "index").read_bytes()

    commit = new_commit(checkout, tip_of(checkout), "a")

    assert (checkout / ".git" / "index").read_bytes() == index_before
    assert git("show", f"{commit}:note.txt", cwd=checkout) == "a"
    assert "staged.txt" not in git("ls-tree", "--name-only", commit, cwd=checkout)


def test_removing_a_file_through_the_private_index(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")
    tip = tip_of(checkout)
    index = checkout / ".git" / "scratch-index"

    tree = gitrepo.write_tree(checkout, tip, {"shared/build_config.json": None}, index)

    listing = git("ls-tree", "-r", "--name-only", tree, cwd=checkout)
    assert "shared/build_config.json" not in listing
    assert "coordination/jobs.json" in listing


def test_ssh_is_always_in_batch_mode_and_the_checkout_command_is_kept(
    fleet: Fleet,
) -> None:
    checkout = fleet.clone("build1")
    git("config", "core.sshCommand", "ssh -i /keys/deploy", cwd=checkout)

    command = gitrepo.ssh_command(checkout)

    assert command.startswith("ssh -i /keys/deploy ")
    assert "BatchMode=yes" in command


def test_a_fresh_index_lock_is_waited_for_then_reported(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")
    lock = checkout / ".git" / "index.lock"
    lock.write_text("")

    with pytest.raises(RepositoryLocked, match="repository locked") as raised:
        wait_for_index_lock(checkout, timeout=0.2)

    assert str(lock) in raised.value.message
    assert lock.exists()


def test_an_old_lock_nobody_holds_is_stale_and_removed(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")
    lock = checkout / ".git" / "index.lock"
    lock.write_text("")
    an_hour_ago = time.time() - 3600
    os.utime(lock, (an_hour_ago, an_hour_ago))

    wait_for_index_lock(checkout, timeout=0.1)

    assert not lock.exists()


def test_an_old_lock_still_open_in_a_process_is_not_stale(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")
    lock = checkout / ".git" / "index.lock"
    with lock.open("w"):
        an_hour_ago = time.time() - 3600
        os.utime(lock, (an_hour_ago, an_hour_ago))

        assert not is_stale_lock(lock, checkout)
        with pytest.raises(RepositoryLocked):
            wait_for_index_lock(checkout, timeout=0.1)


def test_the_git_here_is_new_enough() -> None:
    gitrepo.require_git()

    assert gitrepo.git_version()[:2] >= gitrepo.MINIMUM_GIT


def test_git_in_a_missing_directory_names_the_directory_not_git(
    tmp_path: Path,
) -> None:
    file = tmp_path / "somefile"
    file.write_text("")

    with pytest.raises(WatcherError) as missing:
        gitrepo.run_git(["status"], cwd=tmp_path / "nonexistent")
    with pytest.raises(WatcherError) as not_a_directory:
        gitrepo.run_git(["status"], cwd=file)

    gone = tmp_path / "nonexistent"
    assert missing.value.message == f"cannot run `git` in {gone}: no such directory"
    assert not_a_directory.value.message.endswith(f"{file}: is not a directory")
    assert "install git" not in str(missing.value) + str(not_a_directory.value)


def test_a_program_that_is_really_missing_is_reported_as_missing() -> None:
    with pytest.raises(WatcherError) as caught:
        process.run(["no-such-program-here"])

    assert caught.value.message == "cannot run `no-such-program-here`: not found"


RACER = """
import sys
from pathlib import Path
from watcher.config import Config
from watcher.errors import UsageError
from watcher.joblist import SubmitJob
from watcher.poller import fetch_remote
from watcher.transaction import transact
action, checkout, node, rounds = sys.argv[1:5]
config = Config(repo=Path(checkout), node=node)
for _ in range(int(rounds)):
    if action == "fetch":
        fetch_remote(config)
    else:
        assert transact(config, SubmitJob(type="build", branch="main")).is_done
"""


def test_processes_fetching_and_writing_in_one_checkout_do_not_race(
    fleet: Fleet,
) -> None:
    """The daemon's polls and commands' transactions move the same tracking ref."""
    shared, peer = fleet.clone("build1"), fleet.clone("build2")
    plan = [
        ("fetch", shared, "build1", 80),
        ("fetch", shared, "build1", 80),
        ("submit", shared, "build1", 12),
        ("submit", peer, "build2", 12),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, action, str(path), node, str(rounds)],
            stderr=subprocess.PIPE,
            env=env,
            cwd=fleet.root,
        )
        for action, path, node, rounds in plan
    ]
    outputs = [racer.communicate(timeout=300)[1].decode() for racer in racers]

    for racer, stderr in zip(racers, outputs, strict=True):
        assert racer.returncode == 0, stderr
        assert "cannot lock ref" not in stderr
    jobs = json.loads(fleet.remote_file("coordination/jobs.json"))["jobs"]
    assert len(jobs) == 24


def test_commits_are_never_signed_whatever_the_persons_git_config(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A global `commit.gpgSign` or `push.gpgSign` would make every commit or push
    ask gpg (here: fail)."""
    checkout = fleet.clone("build1")
    home = tmp_path / "signing-home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Signer\n\temail = signer@example.invalid\n"
        "[commit]\n\tgpgSign = true\n[push]\n\tgpgSign = true\n"
        "[gpg]\n\tprogram = false\n"
        '[protocol "file"]\n\tallow = always\n'
    )
    monkeypatch.setenv("HOME", str(home))
    config = Config(repo=checkout, node="build1")

    outcome = transact(config, SubmitJob(type="build", branch="main"))
    document = heartbeat_document("build1", now_utc(), 1, 0.0)
    beat = commit_heartbeat(checkout, "build1", document)
    push_heartbeat(checkout, "origin", "build1", beat)

    assert outcome.is_done
    for commit in (fleet.remote_log()[0], beat):
        assert "gpgsig" not in git("cat-file", "commit", commit, cwd=fleet.remote)
