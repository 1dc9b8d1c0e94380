"""The fleet on this machine: a bare remote, one checkout and one config per server.

Each server reaches the remote through its own symbolic link (`links/<server>.git`
to `remote.git`), used as a `file://` URL. Renaming a link away makes the remote
unreachable for that server only, and git then says "does not appear to be a git
repository", which the product classifies as unreachable (offline queue), not as
refused access.

Every process the harness starts gets a HOME of its own (a git identity, nothing
of the user's settings), no inherited `GIT_*` variables, and the virtual
environment's `bin` first on PATH so the installed git hooks find `build-watcher`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from chaoslib.plan import JOB_TYPES, Plan
from watcher.documents import dump_document
from watcher.layout import BUILD_CONFIG_PATH, empty_documents

JOB_SCRIPT = """\
import os, random, sys, time
ledger, job_id, low, high, flaky, artifacts = sys.argv[1:7]
node = os.path.basename(os.getcwd().split(os.sep + ".git" + os.sep)[0])
def note(word):
    line = "%s %s %s %d %.3f\\n" % (job_id, word, node, os.getpid(), time.time())
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, line.encode())
    os.close(fd)
rng = random.Random(job_id)
note("start")
time.sleep(rng.uniform(float(low), float(high)))
with open(os.path.join(artifacts, "result.txt"), "w") as out:
    out.write(job_id + "\\n")
if flaky == "1" and rng.random() < 0.5:
    note("fail")
    sys.exit(3)
note("done")
"""

CLOCK_SHIM = '''\
"""Chaos harness only: this process's wall clock runs at an offset read from a file.

time.time, time.time_ns and datetime.now/utcnow/today move; time.monotonic and
sleeping do not, as with a real wall-clock step (NTP, `date -s`).
"""
import datetime as _datetime
import os as _os
import time as _time

_PATH = _os.environ.get("CHAOS_CLOCK_OFFSET_FILE")
if _PATH:
    _real_time, _real_time_ns = _time.time, _time.time_ns
    _cache = [0.0, -1.0]

    def _offset():
        now = _time.monotonic()
        if now - _cache[1] > 0.2:
            try:
                with open(_PATH) as handle:
                    _cache[0] = float(handle.read().strip() or 0)
            except (OSError, ValueError):
                pass
            _cache[1] = now
        return _cache[0]

    def _shifted_time():
        return _real_time() + _offset()

    def _shifted_time_ns():
        return _real_time_ns() + int(_offset() * 1e9)

    class _ShiftedDatetime(_datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls.fromtimestamp(_shifted_time(), tz)

        @classmethod
        def utcnow(cls):
            moment = cls.fromtimestamp(_shifted_time(), _datetime.UTC)
            return moment.replace(tzinfo=None)

        @classmethod
        def today(cls):
            return cls.fromtimestamp(_shifted_time())

    _time.time, _time.time_ns = _shifted_time, _shifted_time_ns
    _datetime.datetime = _ShiftedDatetime
'''

CONFIG = """\
poll_interval = 1.0
heartbeat_interval = 1.0
stale_after = 15.0
lease_margin = 5.0
concurrency = 2
kill_grace = 2.0
log_level = "DEBUG"
"""


@dataclass(frozen=True)
class CommandNote:
    """What one command printed to its person, placed by the node's daemon log size
    when it ended (the coordinates fault windows use)."""

    node: str
    log_offset: int
    stderr: str


@dataclass(frozen=True)
class CliResult:
    command: tuple[str, ...]
    code: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> dict[str, object]:
        try:
            value = json.loads(self.stdout)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


def git(
    *args: str, cwd: Path, check: bool = True, env: dict[str, str] | None = None
) -> str:
    completed = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and completed.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {cwd}: {completed.stderr}")
    return completed.stdout


class Fleet:
    """Directories, environment and command line of one run."""

    def __init__(self, root: Path, plan: Plan) -> None:
        self.root = root
        self.plan = plan
        self.remote = root / "remote.git"
        self.links = root / "links"
        self.logs = root / "logs"
        self.ledger = root / "ledger.txt"
        self.home = root / "home"
        self.clock_file = root / "clock-offset"
        self.checkouts = {node: root / node for node in plan.servers}
        self.configs = {node: root / f"{node}.toml" for node in plan.servers}
        self.command_notes: list[CommandNote] = []

    # Building it.

    def create(self) -> None:
        for directory in (self.links, self.logs, self.home, self.root / "clockshim"):
            directory.mkdir(parents=True, exist_ok=True)
        self._write_home()
        self._seed_remote(self._source_repo())
        for node in self.plan.servers:
            (self.links / f"{node}.git").symlink_to(self.remote)
            self._clone(node)
            self.configs[node].write_text(self._config_text())
        (self.root / "clockshim" / "sitecustomize.py").write_text(CLOCK_SHIM)
        self.clock_file.write_text("0\n")

    def _write_home(self) -> None:
        (self.home / ".gitconfig").write_text(
            "[user]\n\tname = Chaos Person\n\temail = chaos@example.invalid\n"
            '[init]\n\tdefaultBranch = main\n[protocol "file"]\n\tallow = always\n'
        )

    def _source_repo(self) -> Path:
        """The project the jobs fetch before their script runs."""
        source = self.root / "source"
        git("init", "-q", "-b", "main", str(source), cwd=self.root, env=self.env())
        (source / "README").write_text("the source the chaos jobs build\n")
        git("add", "-A", cwd=source, env=self.env())
        git("commit", "-qm", "Add the source", cwd=source, env=self.env())
        return source

    def _seed_remote(self, source: Path) -> None:
        env = self.env()
        git(
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            str(self.remote),
            cwd=self.root,
            env=env,
        )
        work = self.root / "seed"
        git("init", "-q", "-b", "main", str(work), cwd=self.root, env=env)
        documents = dict(empty_documents())
        settings = dict(documents[BUILD_CONFIG_PATH])  # type: ignore[call-overload]
        settings["cloudstack"] = {"branch": "main", "repository": source.as_uri()}
        documents[BUILD_CONFIG_PATH] = settings
        for path, value in documents.items():
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).write_bytes(dump_document(value))
        git("add", "-A", cwd=work, env=env)
        git("commit", "-qm", "Create the coordination layout", cwd=work, env=env)
        git("push", "-q", self.remote.as_uri(), "main", cwd=work, env=env)

    def _clone(self, node: str) -> None:
        target = self.checkouts[node]
        git("clone", "-q", self.url(node), str(target), cwd=self.root, env=self.env())
        (target / ".build_server_id").write_text(node + "\n")
        with (target / ".git" / "info" / "exclude").open("a") as handle:
            handle.write(".build_server_id\n")
        result = self.cli(node, "hooks", "install")
        if result.code != 0:
            raise RuntimeError(f"hooks install failed in {target}: {result.stderr}")

    def _config_text(self) -> str:
        lines = [CONFIG]
        for job_type in JOB_TYPES:
            command = [
                sys.executable,
                "-c",
                JOB_SCRIPT,
                str(self.ledger),
                "{job_id}",
                str(job_type.low),
                str(job_type.high),
                "1" if job_type.flaky else "0",
                "{artifacts}",
            ]
            lines.append(f"[job_types.{job_type.name}]")
            lines.append(f"command = {json.dumps(command)}\n")
        return "\n".join(lines)

    # Using it.

    def url(self, node: str) -> str:
        return (self.links / f"{node}.git").as_uri()

    def env(self, node: str | None = None) -> dict[str, str]:
        """The environment of a process on `node` (a shifted clock on one server)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GIT_", "BUILD_WATCHER_", "JOURNAL_", "NOTIFY_"))
        }
        env["HOME"] = str(self.home)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        if node is not None and node == self.plan.clock_server:
            inherited = [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []
            env["PYTHONPATH"] = os.pathsep.join(
                [str(self.root / "clockshim"), *inherited]
            )
            env["CHAOS_CLOCK_OFFSET_FILE"] = str(self.clock_file)
        return env

    def command(self, node: str, *args: str) -> list[str]:
        base = [sys.executable, "-m", "watcher", "--repo", str(self.checkouts[node])]
        return [*base, *args]

    def cli(self, node: str, *args: str, timeout: float = 180.0) -> CliResult:
        """One `build-watcher` command run in `node`'s checkout, to its end."""
        command = self.command(node, *args)
        started = time.monotonic()
        completed = subprocess.run(
            command,
            env=self.env(node),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        seconds = time.monotonic() - started
        self.note_command(node, completed.stderr)
        return CliResult(
            tuple(args),
            completed.returncode,
            completed.stdout,
            completed.stderr,
            seconds,
        )

    def person_git(self, node: str, *args: str) -> subprocess.CompletedProcess[str]:
        """git as a person at `node`'s checkout runs it (hooks included)."""
        return subprocess.run(
            ["git", *args],
            cwd=self.checkouts[node],
            env=self.env(node),
            capture_output=True,
            text=True,
            check=False,
        )

    def outbox_entries(self, node: str) -> list[Path]:
        outbox = self.checkouts[node] / ".git" / "build-watcher" / "outbox"
        return sorted(outbox.glob("*.json")) if outbox.is_dir() else []

    def log_path(self, node: str) -> Path:
        return self.logs / f"{node}.log"

    def note_command(self, node: str, stderr: str) -> None:
        """Keep what a command said: a fault it met may show there, not in a log."""
        if stderr.strip():
            log = self.log_path(node)
            offset = log.stat().st_size if log.exists() else 0
            self.command_notes.append(CommandNote(node, offset, stderr))
