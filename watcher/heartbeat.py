"""Heartbeat branches: one parentless commit per server, replaced at every beat.

A server's heartbeat lives on `heartbeat/<server>` as a single commit holding
`<server>/heartbeat.json`. Each beat builds a fresh commit with no parent (from
git objects only: no index, no working tree) and force-pushes it, so the branch
never grows history and the main branch gains no commit. Nothing else ever writes
that branch. Peers' branches arrive with the ordinary fetch as
`refs/remotes/<remote>/heartbeat/<server>`; what an observer looks at is the blob
id of the heartbeat file, which changes at every beat because the document carries
a sequence number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from loguru import logger

from watcher.documents import dump_document, read_blobs
from watcher.gitrepo import NO_SIGNING_COMMIT, GitError, git_error, run_git
from watcher.layout import heartbeat_path, is_valid_server_id
from watcher.remoterefs import PLAIN_PUSH, fetch_refs, ref_lock, remote_failure
from watcher.timestamps import format_timestamp, parse_timestamp

BRANCH_PREFIX = "heartbeat/"
COMMITTER_NAME = "build-watcher"
_REMOTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Heartbeat:
    """One server's heartbeat as last fetched: which objects, and what it says."""

    server: str
    commit: str
    blob: str
    document: Mapping[str, Any] | None

    @property
    def timestamp(self) -> datetime | None:
        """The peer's own claim of when it beat, on the peer's clock."""
        if self.document is None:
            return None
        return parse_timestamp(self.document.get("timestamp"))


def branch_name(server: str) -> str:
    return BRANCH_PREFIX + server


def tracking_prefix(remote: str) -> str:
    """Where peers' heartbeat branches are kept locally, next to the main branch's.

    The rule is the one `transaction.tracking_ref` applies to the main branch: a
    remote given as a URL has no remote-tracking namespace, so a private one is used.
    """
    if _REMOTE_NAME.match(remote):
        return f"refs/remotes/{remote}/{BRANCH_PREFIX}"
    return f"refs/build-watcher/remote/{BRANCH_PREFIX}"


def fetch_refspec(remote: str) -> str:
    """The refspec that brings every heartbeat branch with a fetch of `remote`."""
    return f"+refs/heads/{BRANCH_PREFIX}*:{tracking_prefix(remote)}*"


def fetch_heartbeats(repo: Path, remote: str) -> None:
    """Fetch only the heartbeat branches (the daemon fetches them with main)."""
    completed = fetch_refs(repo, remote, [fetch_refspec(remote)], prune=True)
    if completed.returncode != 0:
        raise remote_failure(git_error(completed), remote)


def heartbeat_document(
    server: str,
    moment: datetime,
    sequence: int,
    uptime_seconds: float,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The seed's heartbeat fields, plus a sequence number so every beat differs."""
    document: dict[str, Any] = {
        "server": server,
        "timestamp": format_timestamp(moment),
        "sequence": sequence,
        "uptime_seconds": int(uptime_seconds),
        "healthy": True,
    }
    document.update(extra or {})
    return document


def commit_heartbeat(repo: Path, server: str, document: Mapping[str, Any]) -> str:
    """A parentless commit whose tree holds only `<server>/heartbeat.json`."""
    blob = _git_text(repo, ["hash-object", "-w", "--stdin"], dump_document(document))
    inner = _git_text(
        repo, ["mktree"], f"100644 blob {blob}\theartbeat.json\n".encode()
    )
    root = _git_text(repo, ["mktree"], f"040000 tree {inner}\t{server}\n".encode())
    summary = f"Heartbeat {server} #{document.get('sequence', 0)}"
    return _git_text(
        repo,
        ["commit-tree", NO_SIGNING_COMMIT, root, "-m", summary],
        None,
        extra_env=_identity(server, str(document.get("timestamp", ""))),
    )


def push_heartbeat(
    repo: Path, remote: str, server: str, commit: str, timeout: float = 60
) -> None:
    """Replace the remote branch with `commit`; the remote-tracking ref follows."""
    target = f"refs/heads/{branch_name(server)}"
    args = ["push", "--quiet", "--force", *PLAIN_PUSH, remote, f"+{commit}:{target}"]
    # A push to a named remote moves its tracking ref, a push to a URL does not;
    # ours is kept current either way, under the ref lock like every fetch. A git
    # outside build-watcher fetching at this moment brings the same commit, so a
    # failed update here is harmless.
    with ref_lock(repo):
        try:
            run_git(args, cwd=repo, timeout=timeout)
        except GitError as error:
            raise remote_failure(error, remote) from error
        local = tracking_prefix(remote) + server
        run_git(["update-ref", local, commit], cwd=repo, check=False)
    logger.debug("heartbeat pushed", server=server, commit=commit)


def read_heartbeats(
    repo: Path, remote: str, previous: Mapping[str, Heartbeat] | None = None
) -> dict[str, Heartbeat]:
    """Every heartbeat branch as last fetched from `remote`, by server.

    Branches whose commit is the one in `previous` are not read again, so a look
    at refs that did not move costs one `git for-each-ref`.
    """
    commits = _heartbeat_refs(repo, remote)
    known = {
        server: beat
        for server, beat in (previous or {}).items()
        if commits.get(server) == beat.commit
    }
    moved = {
        server: commit for server, commit in commits.items() if server not in known
    }
    blobs = _heartbeat_blobs(repo, moved)
    contents = read_blobs(repo, blobs.values())
    for server, blob in blobs.items():
        document = _parse(server, contents[blob])
        known[server] = Heartbeat(server, moved[server], blob, document)
    return known


def _heartbeat_refs(repo: Path, remote: str) -> dict[str, str]:
    prefix = tracking_prefix(remote)
    out = run_git(
        ["for-each-ref", "--format=%(objectname) %(refname)", prefix], cwd=repo
    )
    commits: dict[str, str] = {}
    for line in out.decode("utf-8", "replace").splitlines():
        commit, _, ref = line.partition(" ")
        server = ref.removeprefix(prefix)
        # Anyone with push access can create a branch; only plain server ids count.
        if is_valid_server_id(server):
            commits[server] = commit
    return commits


def _heartbeat_blobs(repo: Path, commits: Mapping[str, str]) -> dict[str, str]:
    """The heartbeat blob of each commit, through one `cat-file --batch-check`."""
    if not commits:
        return {}
    servers = sorted(commits)
    lines = "".join(f"{commits[s]}:{heartbeat_path(s)}\n" for s in servers)
    out = run_git(
        ["cat-file", "--batch-check=%(objectname) %(objecttype)"],
        cwd=repo,
        input_bytes=lines.encode(),
    )
    blobs: dict[str, str] = {}
    for server, line in zip(servers, out.decode().splitlines(), strict=True):
        sha, _, kind = line.partition(" ")
        if kind == "blob":
            blobs[server] = sha
        else:
            logger.warning("heartbeat branch without a heartbeat file", server=server)
    return blobs


def _parse(server: str, data: bytes) -> Mapping[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        logger.warning("heartbeat does not parse", server=server)
        return None
    if not isinstance(value, dict) or value.get("server") != server:
        logger.warning("heartbeat names another server", server=server)
        return None
    return value


def _identity(server: str, when: str) -> dict[str, str]:
    """Heartbeat commits name the server, whatever git identity the host has."""
    email = f"{server}@build-watcher.invalid"
    env = {
        "GIT_AUTHOR_NAME": f"{COMMITTER_NAME} ({server})",
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": f"{COMMITTER_NAME} ({server})",
        "GIT_COMMITTER_EMAIL": email,
    }
    if parse_timestamp(when) is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = when
    return env


def _git_text(
    repo: Path,
    args: list[str],
    input_bytes: bytes | None,
    extra_env: Mapping[str, str] | None = None,
) -> str:
    out = run_git(args, cwd=repo, input_bytes=input_bytes, extra_env=extra_env)
    return out.decode().strip()
