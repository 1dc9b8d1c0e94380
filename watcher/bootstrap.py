"""Making a checkout ready for the daemon: checkout, identity, layout, hooks, config.

Each step returns what it did, for `build-watcher init` to print. Nothing here
throws work away: a checkout with local work stays on its branch, an existing
configuration file is kept, and hooks already installed are chained.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from watcher import githooks, mergedriver
from watcher.config import CHECKOUT_CONFIG, Config, load_config
from watcher.configexample import example_config
from watcher.draft import Draft, Moot, register_operation
from watcher.errors import UsageError
from watcher.gitrepo import (
    check_ref_format,
    resolve_commit,
    run_git,
    run_git_process,
)
from watcher.layout import IDENTITY_FILE, empty_documents
from watcher.outbox import write_durably
from watcher.transaction import OutcomeStatus, transact

EXCLUDED = (IDENTITY_FILE, CHECKOUT_CONFIG)


@dataclass(frozen=True)
class Step:
    name: str
    done: str


def prepare_checkout(repo: Path, remote: str | None) -> Step:
    """Clone into `repo` when it is no checkout yet; else check or add `origin`."""
    if not _is_checkout_top(repo):
        if remote is None:
            raise UsageError(
                f"{repo} is not the top of a git checkout",
                hint="pass --remote URL to clone the coordination repository there",
            )
        repo.parent.mkdir(parents=True, exist_ok=True)
        run_git(["clone", "--quiet", "--", remote, str(repo)], repo.parent)
        return Step("checkout", f"{repo} (cloned from {remote})")
    if remote is not None:
        return Step("checkout", f"{repo} ({_set_origin(repo, remote)})")
    return Step("checkout", str(repo))


def _is_checkout_top(repo: Path) -> bool:
    if not repo.is_dir():
        return False
    probe = run_git_process(["rev-parse", "--show-toplevel"], repo)
    return probe.returncode == 0 and Path(probe.stdout.decode().strip()) == repo


def _set_origin(repo: Path, url: str) -> str:
    current = run_git_process(["remote", "get-url", "origin"], repo)
    if current.returncode != 0:
        run_git(["remote", "add", "origin", url], repo)
        return f"origin added: {url}"
    found = current.stdout.decode().strip()
    if found != url:
        raise UsageError(
            f"{repo}: the remote origin is {found}, not {url}",
            hint=f"change it with `git -C {repo} remote set-url origin {url}` if meant",
        )
    return f"origin is {url}"


def resolve_config(
    repo: Path, node: str | None, config_file: str | None, branch: str | None
) -> Config:
    """The configuration, with the server id required and `--branch` applied."""
    config = load_config(str(repo), node, config_file)
    if config.node is None:
        raise UsageError(
            f"{repo}: no server id yet",
            hint="pass --node ID (letters, digits, '.', '_', '-'), e.g. --node build1",
        )
    if branch:
        if not check_ref_format(branch):
            raise UsageError(f"--branch {branch!r} is not a valid branch name")
        config = replace(config, branch=branch)
    return config


def write_identity(config: Config) -> Step:
    """`.build_server_id` in the checkout, and it and the config kept out of git."""
    node = config.require_node()
    path = config.repo / IDENTITY_FILE
    if not path.exists() or path.read_text(encoding="utf-8").strip() != node:
        write_durably(path, node + "\n")
    _exclude(config.repo, EXCLUDED)
    return Step("identity", f"{node} (in {IDENTITY_FILE}, kept out of git)")


def _exclude(repo: Path, names: tuple[str, ...]) -> None:
    out = run_git(["rev-parse", "--git-path", "info/exclude"], repo).decode().strip()
    exclude = (repo / out).resolve()
    exclude.parent.mkdir(parents=True, exist_ok=True)
    lines = exclude.read_text(encoding="utf-8").splitlines() if exclude.exists() else []
    missing = [f"/{name}" for name in names if f"/{name}" not in lines]
    if missing:
        with exclude.open("a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in missing))


def create_layout(config: Config) -> Step:
    """The shared documents on the remote branch, in one transaction if missing.

    A checkout without any commit yet (a clone of an empty remote) is first put
    on the shared branch, so the transaction brings it along to the layout.
    """
    if resolve_commit(config.repo, "HEAD") is None:
        run_git(["symbolic-ref", "HEAD", f"refs/heads/{config.branch}"], config.repo)
    outcome = transact(config, CreateLayout(), offline_ok=False)
    where = f"{config.remote}/{config.branch}"
    if outcome.status is OutcomeStatus.FAILED:
        raise UsageError(
            f"cannot create the layout on {where}: {outcome.reason}",
            hint="check that the remote exists and that this server may push to it",
        )
    if outcome.status is OutcomeStatus.MOOT:
        return Step("layout", f"already on {where}")
    return Step("layout", f"created on {where} in commit {(outcome.commit or '')[:10]}")


def check_out_branch(config: Config) -> Step:
    """Put an empty or fresh checkout on the shared branch; never touch work."""
    head = run_git_process(["symbolic-ref", "--quiet", "--short", "HEAD"], config.repo)
    current = head.stdout.decode().strip()
    if current == config.branch and resolve_commit(config.repo, "HEAD"):
        return Step("branch", f"{current}, following {config.tracking_ref}")
    if resolve_commit(config.repo, "HEAD") is None or not _has_local_work(config.repo):
        args = ["checkout", "--quiet", "-B", config.branch, config.tracking_ref]
        run_git(args, config.repo)
        return Step("branch", f"{config.branch}, checked out at {config.tracking_ref}")
    return Step("branch", f"left on {current or 'a detached HEAD'} (it has local work)")


def _has_local_work(repo: Path) -> bool:
    status = run_git(["status", "--porcelain", "--untracked-files=no"], repo)
    return bool(status.strip())


def install_git_hooks(repo: Path) -> list[Step]:
    changes = githooks.install_hooks(repo)
    mergedriver.install_driver(repo)
    done = ", ".join(f"{change.name} {change.action.value}" for change in changes)
    return [Step("hooks", done), Step("merge driver", "registered")]


def write_example_config(repo: Path, branch: str | None) -> Step:
    """The commented example as the checkout's config file, unless one is there."""
    path = repo / CHECKOUT_CONFIG
    if path.exists():
        return Step("config", f"{path} kept as it is")
    text = example_config()
    if branch and branch != "main":
        text += f"\nbranch = {json.dumps(branch)}\n"
    write_durably(path, text)
    return Step("config", f"{path} written: every setting, commented, with its default")


@register_operation
@dataclass(frozen=True)
class CreateLayout:
    """Write the shared documents that are missing; existing ones stay as they are."""

    name: ClassVar[str] = "create-layout"

    def apply(self, draft: Draft) -> str | Moot:
        documents = empty_documents()
        missing = [path for path in documents if path not in draft.base.blobs]
        if not missing:
            return Moot("the layout is already there")
        for path in missing:
            draft.write(path, documents[path])
        return f"create the coordination layout ({len(missing)} documents)"

    def to_json(self) -> dict[str, Any]:
        return {}
