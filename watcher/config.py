"""Configuration: resolved once, from flags, the environment and one TOML file.

Precedence, highest first: command-line flags, `BUILD_WATCHER_*` variables, the
config file (`--config`, else `/etc/build-watcher/config.toml`, else the checkout's
`.build-watcher.toml`), built-in defaults. The server id may also come from a
`.build_server_id` file in the checkout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watcher.errors import UsageError
from watcher.gitrepo import checkout_directory, enclosing_checkout, is_remote_name
from watcher.layout import IDENTITY_FILE, is_valid_server_id
from watcher.settings import (
    ENV_PREFIX,
    HandlerCommand,
    JobType,
    Origin,
    ReplyRule,
    expect_type,
    read_toml,
    settings_from_env,
    settings_from_table,
)

__all__ = ["Config", "HandlerCommand", "JobType", "ReplyRule", "load_config"]

SYSTEM_CONFIG = Path("/etc/build-watcher/config.toml")
CHECKOUT_CONFIG = ".build-watcher.toml"
DEFAULT_JOB_TYPES = ("build", "package")


@dataclass(frozen=True)
class Config:
    repo: Path
    node: str | None = None
    remote: str = "origin"
    branch: str = "main"
    poll_interval: float = 10.0
    heartbeat_interval: float = 60.0
    stale_after: float = 180.0
    lease_margin: float = 30.0
    concurrency: int = 1
    labels: tuple[str, ...] = ()
    max_attempts: int = 3
    build_timeout: float = 4 * 3600.0
    kill_grace: float = 10.0
    transaction_timeout: float = 120.0
    job_types: dict[str, JobType] = field(default_factory=dict)
    handlers: tuple[HandlerCommand, ...] = ()
    reply_rules: tuple[ReplyRule, ...] = ()
    max_thread_depth: int = 4
    max_replies_per_peer_per_hour: int = 20
    log_format: str = "auto"
    log_level: str = "INFO"
    state_dir: Path | None = None
    workspace_dir: Path | None = None
    source: str = "defaults"

    def require_node(self) -> str:
        """The server id, or a usage error for commands that write."""
        if self.node is None:
            raise UsageError(
                "no server id: this command writes to the repository and must know "
                "which server it runs as",
                hint=f"pass --node ID, set {ENV_PREFIX}NODE, set `node` in the config "
                f"file, or run `build-watcher init --node ID` (writes {IDENTITY_FILE})",
            )
        return self.node

    @property
    def state_path(self) -> Path:
        """Private state (progress, offline queue, logs): outside the tracked tree."""
        return self.state_dir or self.repo / ".git" / "build-watcher"

    @property
    def tracking_ref(self) -> str:
        """Where the remote branch's tip is kept after a fetch.

        A remote given as a URL has no remote-tracking namespace; a private ref is
        used instead.
        """
        if is_remote_name(self.remote):
            return f"refs/remotes/{self.remote}/{self.branch}"
        return f"refs/build-watcher/remote/{self.branch}"

    @property
    def workspace_path(self) -> Path:
        return self.workspace_dir or self.state_path / "workspaces"


def load_config(
    repo: str | None = None,
    node: str | None = None,
    config_file: str | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Resolve and validate the configuration once, for one command."""
    env = dict(os.environ if environ is None else environ)
    repo_path = _checkout(repo, env)
    path = _config_path(config_file or env.get(f"{ENV_PREFIX}CONFIG"), repo_path)
    table = read_toml(path) if path else {}
    origin = Origin(path)
    if not repo and f"{ENV_PREFIX}REPO" not in env and "repo" in table:
        configured = Path(expect_type(table, "repo", str, origin)).expanduser()
        repo_path = checkout_directory(
            configured, f"{origin.of('repo')} = {configured}"
        )
    from_file = settings_from_table(table, origin)
    from_env = settings_from_env(env)
    settings = {**from_file, **from_env}
    _require_checkout(repo_path)
    settings["node"] = _node(node, from_env, from_file, origin, repo_path)
    return Config(repo=repo_path, source=str(path or "defaults"), **settings)


def _checkout(flag: str | None, env: dict[str, str]) -> Path:
    """The checkout: --repo, else `BUILD_WATCHER_REPO`, else the one holding cwd."""
    variable = f"{ENV_PREFIX}REPO"
    if flag:
        return checkout_directory(Path(flag), f"--repo {flag}")
    if env.get(variable):
        return checkout_directory(Path(env[variable]), f"{variable}={env[variable]}")
    return enclosing_checkout(Path.cwd())


def _require_checkout(repo: Path) -> None:
    """Commands read a checkout's git objects; a plain or bare directory has none."""
    if (repo / ".git").exists():
        return
    bare = (repo / "HEAD").is_file() and (repo / "objects").is_dir()
    raise UsageError(
        f"{repo} is {'a bare repository' if bare else 'not a git checkout'}",
        hint="pass --repo with a checkout of the coordination repository (`git "
        "clone URL DIR`, or `build-watcher --repo DIR --node ID init --remote URL`)",
    )


def _config_path(explicit: str | None, repo: Path) -> Path | None:
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise UsageError(
                f"config file {path} does not exist",
                hint="check the --config path or BUILD_WATCHER_CONFIG",
            )
        return path
    for candidate in (SYSTEM_CONFIG, repo / CHECKOUT_CONFIG):
        if candidate.is_file():
            return candidate
    return None


def _identity_file(repo: Path) -> str | None:
    try:
        return (repo / IDENTITY_FILE).read_text(encoding="utf-8").strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None


def _node(
    flag: str | None,
    from_env: dict[str, Any],
    from_file: dict[str, Any],
    origin: Origin,
    repo: Path,
) -> str | None:
    """The server id from the first source that gives one, checked, naming it."""
    given = (
        (flag, "the flag --node"),
        (from_env.get("node"), f"the environment variable {ENV_PREFIX}NODE"),
        (from_file.get("node"), origin.of("node")),
    )
    for node, source in given:
        if node:
            _check_node(node, source)
            return str(node)
    node = _identity_file(repo)
    if node:
        _check_node(node, str(repo / IDENTITY_FILE))
    return node


def _check_node(node: str, source: str) -> None:
    if not is_valid_server_id(node):
        raise UsageError(
            f"server id {node!r} is not usable (from {source})",
            hint="use letters, digits, '.', '_' or '-', starting with a letter or "
            "digit, at most 63 characters, and not 'all', 'coordination' or 'shared'",
        )
