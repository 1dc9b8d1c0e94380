"""Transactions over ssh:// to an sshd on 127.0.0.1 that this test starts.

The checkouts' `core.sshCommand` names the key and known_hosts file but not batch
mode: the product adds that itself, which the unknown-host test proves (an ssh
that could prompt would wait here instead of failing).

The daemon runs as the current user with host and user keys made here, so no
system ssh configuration is read or changed. Skipped, saying why, when sshd is not
installed (`.ci/run` installs openssh-server).
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Fleet, git
from watcher.config import load_config
from watcher.joblist import SubmitJob
from watcher.layout import JOBS_PATH
from watcher.remoterefs import RemoteAccessDenied
from watcher.transaction import OutcomeStatus, transact

SSHD = Path("/usr/sbin/sshd")


@dataclass(frozen=True)
class SshServer:
    port: int
    user_key: Path
    known_hosts: Path

    def url(self, path: Path) -> str:
        return f"ssh://{getpass.getuser()}@127.0.0.1:{self.port}{path}"

    def ssh_command(self, known_hosts: Path | None = None) -> str:
        hosts = known_hosts or self.known_hosts
        return (
            f"ssh -F /dev/null -i {self.user_key} -o IdentitiesOnly=yes "
            f"-o UserKnownHostsFile={hosts}"
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_key(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True
    )


def write_sshd_config(root: Path, port: int) -> Path:
    config = root / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\n"
        f"PidFile {root / 'sshd.pid'}\nAuthorizedKeysFile {root / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
        "UsePAM no\nStrictModes no\nLogLevel ERROR\n"
    )
    return config


def wait_for_port(port: int, daemon: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise AssertionError(f"sshd exited: {daemon.stderr.read()!r}")  # type: ignore[union-attr]
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"sshd did not listen on port {port}")


@pytest.fixture
def ssh_server(tmp_path: Path) -> Iterator[SshServer]:
    if not SSHD.is_file() or shutil.which("ssh-keygen") is None:
        pytest.skip("/usr/sbin/sshd is not installed (apt-get install openssh-server)")
    if os.geteuid() == 0:
        # sshd started by root insists on its privilege separation directory.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    root = tmp_path / "sshd"
    root.mkdir()
    make_key(root / "host_key")
    make_key(root / "user_key")
    shutil.copy(root / "user_key.pub", root / "authorized_keys")
    host_public = (root / "host_key.pub").read_text().split()
    port = free_port()
    known = root / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_public[0]} {host_public[1]}\n")
    command = [str(SSHD), "-D", "-e", "-f", str(write_sshd_config(root, port))]
    daemon = subprocess.Popen(command, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, daemon)
        yield SshServer(port, root / "user_key", known)
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def ssh_checkout(
    fleet: Fleet, server: SshServer, node: str, hosts: Path | None
) -> Path:
    checkout = fleet.clone(node)
    git("remote", "set-url", "origin", server.url(fleet.remote), cwd=checkout)
    git("config", "core.sshCommand", server.ssh_command(hosts), cwd=checkout)
    return checkout


def test_a_transaction_lands_over_ssh(fleet: Fleet, ssh_server: SshServer) -> None:
    checkout = ssh_checkout(fleet, ssh_server, "build1", None)
    request = SubmitJob(type="build", branch="main")

    outcome = transact(load_config(str(checkout), "build1"), request)

    assert outcome.status is OutcomeStatus.DONE, outcome.reason
    jobs = json.loads(fleet.remote_file(JOBS_PATH))["jobs"]
    assert [job["id"] for job in jobs] == [request.job_id]


def test_an_unknown_host_key_fails_at_once_with_a_clear_error(
    fleet: Fleet, ssh_server: SshServer, tmp_path: Path
) -> None:
    empty_known_hosts = tmp_path / "nobody_known"
    empty_known_hosts.write_text("")
    checkout = ssh_checkout(fleet, ssh_server, "build1", empty_known_hosts)
    config = load_config(str(checkout), "build1")
    started = time.monotonic()

    with pytest.raises(RemoteAccessDenied) as raised:
        transact(config, SubmitJob(type="build", branch="main"))

    assert time.monotonic() - started < 20
    assert "host key" in raised.value.message.lower()
    assert "known_hosts" in str(raised.value.hint)
    assert not (config.state_path / "outbox").is_dir() or not any(
        (config.state_path / "outbox").glob("*.json")
    )
