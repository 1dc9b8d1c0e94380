"""The chaos run's short mode: three real daemons on one bare remote, twelve jobs,
four messages, and five kinds of fault (kill -9 mid-build, the remote away, a
broken hand edit, malicious branch names, a credential in a message).

`bench/chaos --short` runs once for the module, as a process, and reports every
invariant as JSON; each invariant is one test here. The full run (four servers,
200 jobs, every kind of fault) is `bench/chaos` by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow

CHAOS = PROJECT_ROOT / "bench" / "chaos"
SEED = 7
INVARIANTS = [
    "every job ended exactly once",
    "no job ran to completion twice",
    "every message sent is present once",
    "every offline queue was emptied",
    "every commit on main passes strict validation",
    "history is linear",
    "each heartbeat branch holds one commit",
    "no daemon died for good",
    "no handler crashed with a traceback",
    "each fault shows at WARNING",
    "each fault was survived",
    "nothing was executed from the malicious jobs",
    "the credential never reached the remote",
    "commits a person made by hand stayed local",
]


@pytest.fixture(scope="module")
def chaos_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("chaos") / "run"
    command = [sys.executable, str(CHAOS), "--short", "--seed", str(SEED), "--json"]
    completed = subprocess.run(
        [*command, "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.stdout, completed.stderr
    report: dict[str, Any] = json.loads(completed.stdout)
    assert completed.returncode == (0 if report["ok"] else 1), completed.stderr
    return report


def _check(report: dict[str, Any], name: str) -> dict[str, Any]:
    found = [check for check in report["checks"] if check["name"].startswith(name)]
    assert len(found) == 1, f"no single check named {name!r}"
    return found[0]


@pytest.mark.parametrize("name", INVARIANTS)
def test_the_invariant_holds_under_faults(
    chaos_report: dict[str, Any], name: str
) -> None:
    check = _check(chaos_report, name)
    assert check["ok"], check["detail"]


def test_the_run_reports_its_seed_and_figures(chaos_report: dict[str, Any]) -> None:
    assert chaos_report["seed"] == SEED
    assert chaos_report["jobs"]["accepted"] == 12
    assert chaos_report["jobs"]["per_minute"] > 0
    kinds = {row["kind"] for row in chaos_report["faults"]}
    assert kinds == {
        "kill -9 mid-build",
        "remote unreachable",
        "hand edit breaks a file",
        "malicious branch name",
        "credential in a message",
    }


def test_every_check_is_covered_by_a_test(chaos_report: dict[str, Any]) -> None:
    names = [check["name"] for check in chaos_report["checks"]]
    uncovered = [n for n in names if not any(n.startswith(i) for i in INVARIANTS)]
    assert not uncovered
