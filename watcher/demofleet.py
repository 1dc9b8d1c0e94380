"""The demo's fleet on this machine: a bare remote, the sample project as the job
source, server checkouts with fast settings, and one daemon process per server.

Everything lives under one directory. The git commands the demo and its daemons
run see a private HOME there, so the person's own git configuration (signing,
hooks paths, URL rewrites) plays no part; Python's user site stays where it was,
so an install with `pip install --user` still imports.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import site
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from watcher import process
from watcher.documents import dump_document
from watcher.gitrepo import identity_environment, run_git
from watcher.layout import BUILD_CONFIG_PATH, empty_documents

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
SAMPLE_FILES = ("calc.py", "test_calc.py", "build.py")
OPERATOR = "operator"
SLOW_SECONDS = 5.0
STOP_WAIT = 20.0
WARNING_LEVEL = 30
_DROPPED_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
# Fast enough to show a death and a takeover within seconds; far too eager for a
# real fleet, whose defaults are minutes (see the README).
SERVER_SETTINGS = """\
# A demo server: every interval is seconds, not minutes.
poll_interval = 0.5
heartbeat_interval = 1.0
stale_after = 4.0
lease_margin = 1.0
kill_grace = 2.0
concurrency = 1
log_format = "json"

[job_types.build]
command = [{python}, "build.py", "--output", "{{artifacts}}"]
timeout = 60

[job_types.slow]
command = [{python}, "build.py", "--seconds", "{seconds:g}",
           "--output", "{{artifacts}}"]
timeout = 60
"""


@dataclass(frozen=True)
class FleetPaths:
    """Where each part of the demo fleet lives under `root`."""

    root: Path

    @property
    def remote(self) -> Path:
        return self.root / "remote.git"

    @property
    def sample(self) -> Path:
        return self.root / "sample"

    @property
    def home(self) -> Path:
        return self.root / "home"

    def checkout(self, node: str) -> Path:
        return self.root / node

    def config(self, node: str) -> Path:
        return self.root / f"{node}.toml"

    def log(self, node: str) -> Path:
        return self.root / "logs" / f"{node}.log"


def environment(paths: FleetPaths) -> dict[str, str]:
    """The environment of every process the demo starts: no inherited settings for
    git, build-watcher or systemd, and the private HOME."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("GIT_", "BUILD_WATCHER_"))
        and name not in _DROPPED_VARIABLES
    }
    env["PYTHONUSERBASE"] = os.environ.get("PYTHONUSERBASE", site.getuserbase())
    env["HOME"] = str(paths.home)
    env["XDG_CONFIG_HOME"] = str(paths.home / ".config")
    env["NO_COLOR"] = "1"
    return env


def _git(paths: FleetPaths, args: Sequence[str], cwd: Path) -> str:
    extra = {
        "HOME": str(paths.home),
        "XDG_CONFIG_HOME": str(paths.home / ".config"),
        "GIT_CONFIG_NOSYSTEM": "1",
        **identity_environment("build-watcher demo", "demo@build-watcher.invalid"),
    }
    return run_git(args, cwd=cwd, extra_env=extra).decode().strip()


def create_fleet(paths: FleetPaths, servers: Sequence[str]) -> None:
    """The sample project, the remote, and a checkout for the operator and each
    server, made as a person would: `build-watcher init --remote URL`."""
    for directory in (paths.home, paths.root / "logs"):
        directory.mkdir(parents=True, exist_ok=True)
    create_sample(paths)
    bare = ["init", "--quiet", "--bare", "--initial-branch=main", paths.remote.name]
    _git(paths, bare, paths.root)
    paths.config(OPERATOR).write_text("# The person at the desk.\n", encoding="utf-8")
    init_checkout(paths, OPERATOR)
    point_at_sample(paths)
    settings = SERVER_SETTINGS.format(
        python=json.dumps(sys.executable), seconds=SLOW_SECONDS
    )
    for node in servers:
        paths.config(node).write_text(settings, encoding="utf-8")
    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        list(pool.map(lambda node: init_checkout(paths, node), servers))


def create_sample(paths: FleetPaths) -> str:
    """The sample project as a git repository: the source every job builds."""
    _git(paths, ["init", "--quiet", "--initial-branch=main", "sample"], paths.root)
    for name in SAMPLE_FILES:
        shutil.copyfile(SAMPLE_DIR / name, paths.sample / name)
    _git(paths, ["add", "--", *SAMPLE_FILES], paths.sample)
    _git(paths, ["commit", "--quiet", "-m", "The sample calculator"], paths.sample)
    return _git(paths, ["rev-parse", "HEAD"], paths.sample)


def init_checkout(paths: FleetPaths, node: str) -> None:
    """`build-watcher init`: clone, identity, the layout when missing. No hooks:
    nobody commits by hand in the demo's checkouts, and the daemons poll often."""
    run_cli(paths, node, "init", "--remote", paths.remote.as_uri(), "--no-hooks")


def point_at_sample(paths: FleetPaths) -> None:
    """Name the sample project as the source to build, in the shared build
    configuration: an edit committed and pushed by hand, as a person would."""
    checkout = paths.checkout(OPERATOR)
    _git(paths, ["pull", "--quiet", "--ff-only", "origin", "main"], checkout)
    document = empty_documents()[BUILD_CONFIG_PATH]
    assert isinstance(document, dict)
    document["cloudstack"] = {"repository": paths.sample.as_uri(), "branch": "main"}
    document["build"] = {"maven_opts": "", "profiles": [], "skip_tests": True}
    (checkout / BUILD_CONFIG_PATH).write_bytes(dump_document(document))
    message = "Build the sample project"
    _git(paths, ["commit", "--quiet", "-m", message, "--", BUILD_CONFIG_PATH], checkout)
    _git(paths, ["push", "--quiet", "origin", "HEAD:main"], checkout)


def cli_command(paths: FleetPaths, node: str, *arguments: str) -> list[str]:
    """`build-watcher` as node `node`, with its own checkout and configuration."""
    return [
        sys.executable,
        "-m",
        "watcher",
        "--repo",
        str(paths.checkout(node)),
        "--node",
        node,
        "--config",
        str(paths.config(node)),
        *arguments,
    ]


def run_cli(paths: FleetPaths, node: str, *arguments: str) -> Any:
    """Run one command as `node` with `--format json`; its parsed output."""
    command = cli_command(paths, node, *arguments, "--format", "json")
    completed = process.run(command, cwd=paths.root, env=environment(paths))
    return json.loads(completed.stdout)


@dataclass
class Daemons:
    """One `build-watcher watch` process per server, each logging JSON to a file."""

    paths: FleetPaths
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    read_offsets: dict[str, int] = field(default_factory=dict)
    killed: set[str] = field(default_factory=set)

    def start(self, node: str) -> None:
        command = cli_command(self.paths, node, "--log-format", "json", "watch")
        self.killed.discard(node)
        with self.paths.log(node).open("ab") as log:
            self.processes[node] = process.spawn_group(
                command,
                cwd=self.paths.root,
                env=environment(self.paths),
                output=log.fileno(),
            )

    def is_running(self, node: str) -> bool:
        child = self.processes.get(node)
        return child is not None and child.poll() is None

    def log_records(self, node: str) -> list[Mapping[str, Any]]:
        """Every JSON log record the daemon wrote so far."""
        try:
            lines = self.paths.log(node).read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        return list(_records(lines))

    def is_ready(self, node: str) -> bool:
        """Started since the last (re)start, and said so in its log."""
        return self.is_running(node) and any(
            str(record.get("message", "")).startswith("daemon ready")
            for record in self.log_records(node)[self.read_offsets.get(node, 0) :]
        )

    def unexpected_exits(self) -> dict[str, int]:
        """Daemons that ended without being killed, with their exit status."""
        return {
            node: child.returncode
            for node, child in self.processes.items()
            if node not in self.killed and child.poll() is not None
        }

    def build_running(self, node: str) -> bool:
        """Whether the daemon of `node` has a build command running."""
        child = self.processes.get(node)
        return child is not None and any(
            "build.py" in " ".join(_command_line(victim))
            for victim in _process_tree(child.pid)[1:]
        )

    def problems(self, node: str, count: int = 5) -> str:
        """The last warnings and errors in the daemon's log, for a failure report."""
        records = [
            record
            for record in self.log_records(node)
            if record.get("level", {}).get("no", 0) >= WARNING_LEVEL
        ]
        lines = [f"  {node}: {r.get('message')}" for r in records[-count:]]
        return "\n".join(lines)

    def kill(self, node: str) -> list[int]:
        """Stop a server as a power cut would: the daemon and its builds at once."""
        child = self.processes[node]
        victims = _process_tree(child.pid)
        for victim in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                victim.kill()
        child.wait(timeout=STOP_WAIT)
        psutil.wait_procs(victims, timeout=STOP_WAIT)
        self.read_offsets[node] = len(self.log_records(node))
        self.killed.add(node)
        return [victim.pid for victim in victims]

    def stop_all(self) -> dict[str, int | None]:
        """SIGTERM to every daemon, a wait, then SIGKILL for any left (and its
        builds); the exit status of each daemon, None if it had to be killed."""
        running = {n: c for n, c in self.processes.items() if c.poll() is None}
        for child in running.values():
            child.send_signal(signal.SIGTERM)
        statuses: dict[str, int | None] = {}
        for node, child in running.items():
            try:
                statuses[node] = child.wait(timeout=STOP_WAIT)
            except subprocess.TimeoutExpired:
                self.kill(node)
                statuses[node] = None
        return statuses


def _records(lines: Sequence[str]) -> Iterator[Mapping[str, Any]]:
    """loguru's serialised lines: the `record` of each, skipping anything else."""
    for line in lines:
        try:
            record = json.loads(line).get("record")
        except (ValueError, AttributeError):
            continue
        if isinstance(record, dict):
            yield record


def _process_tree(pid: int) -> list[psutil.Process]:
    try:
        leader = psutil.Process(pid)
        return [leader, *leader.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _command_line(candidate: psutil.Process) -> list[str]:
    try:
        return candidate.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []


def remove_stragglers(paths: FleetPaths) -> list[int]:
    """Kill what the demo started and still runs (a build orphaned by a kill).

    Those processes, and only those, carry the demo's private HOME: a person's
    shell sitting in a kept directory is left alone.
    """
    killed = []
    for candidate in psutil.process_iter(["environ"]):
        environ = candidate.info.get("environ") or {}
        if environ.get("HOME") != str(paths.home) or candidate.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            candidate.kill()
            killed.append(candidate.pid)
    return killed
