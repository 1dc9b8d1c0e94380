"""`build-watcher validate`: sources, profiles, output and exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git
from watcher.documents import dump_document
from watcher.layout import empty_documents
from watcher.main import main

NOW = "2025-11-08T10:00:00Z"
GOOD_JOB = {
    "id": "j1",
    "type": "build",
    "status": "queued",
    "priority": 1,
    "created_at": NOW,
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout holding the empty strict layout, committed."""
    git("init", "--quiet", str(tmp_path), cwd=tmp_path)
    for path, value in empty_documents().items():
        write(tmp_path, path, value)
    git("add", "-A", cwd=tmp_path)
    git("commit", "--quiet", "-m", "layout", cwd=tmp_path)
    return tmp_path


def write(repo: Path, path: str, value: Any) -> None:
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(value if isinstance(value, bytes) else dump_document(value))


def validate(repo: Path, *args: str) -> int:
    return main(["--repo", str(repo), "validate", *args])


def test_a_valid_tree_exits_0(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate(repo) == 0
    assert capsys.readouterr().out.strip() == "checked 4 files: all valid"


def test_an_invalid_file_exits_1_with_path_line_column_and_json_path(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repo, "coordination/jobs.json", {"jobs": [dict(GOOD_JOB, status="done")]})
    assert validate(repo, str(repo / "coordination/jobs.json")) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        'coordination/jobs.json:6:17: $.jobs[0].status: "done" is not one of "queued", '
        '"running", "completed", "failed", "cancelled" [enum]'
    )
    assert lines[1] == "  hint: use one of the listed values"
    assert lines[-1] == "checked 1 file: 1 invalid (1 error)"


def test_best_match_first_then_a_count_of_the_rest(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = [dict(GOOD_JOB, id=f"j{i}", created_at="2025-11-08 10:00") for i in range(5)]
    write(repo, "coordination/jobs.json", {"jobs": jobs})
    assert validate(repo, "--max-problems", "2", str(repo / "coordination")) == 1
    out = capsys.readouterr().out
    assert "coordination/jobs.json: (+3 more: 3 errors)" in out


def test_legacy_profile_turns_departures_into_warnings(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repo, "coordination/jobs.json", {"jobs": [dict(GOOD_JOB, status="done")]})
    assert validate(repo, "--profile", "legacy") == 0
    out = capsys.readouterr().out
    assert "$.jobs[0].status: warning: " in out
    assert out.splitlines()[-1] == "checked 4 files: all valid (1 warning)"


def test_json_output_carries_the_same_fields(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repo, "coordination/jobs.json", b'{"jobs": [],}')
    assert validate(repo, "--format", "json") == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["valid"], report["profile"]) == (False, "strict")
    assert report["summary"] == {
        "files": 4,
        "invalid": 1,
        "errors": 1,
        "warnings": 0,
        "notes": 0,
    }
    [jobs] = [f for f in report["files"] if f["path"] == "coordination/jobs.json"]
    assert (jobs["kind"], jobs["valid"], jobs["commit"]) == ("jobs", False, None)
    [problem] = jobs["problems"]
    assert {
        k: problem[k] for k in ("line", "column", "json_path", "rule", "severity")
    } == {
        "line": 1,
        "column": 12,
        "json_path": "$",
        "rule": "trailing-comma",
        "severity": "error",
    }


def test_a_file_without_a_schema_is_noted_and_does_not_fail(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repo, "coordination/message_stats.json", {"total": 1})
    assert validate(repo, "--all") == 0
    assert "coordination/message_stats.json: $: note: no schema covers this file" in (
        capsys.readouterr().out
    )


def test_staged_reads_the_index_not_the_working_tree(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(repo, "coordination/jobs.json", {"jobs": [GOOD_JOB]})
    git("add", "coordination/jobs.json", cwd=repo)
    write(repo, "coordination/jobs.json", b"not json")
    assert validate(repo, "--staged") == 0
    assert capsys.readouterr().out.strip() == "checked 1 file: all valid"
    git("add", "coordination/jobs.json", cwd=repo)
    assert validate(repo, "--staged") == 1


def test_range_checks_every_version_each_commit_introduced(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = git("rev-parse", "HEAD", cwd=repo).strip()
    write(repo, "coordination/jobs.json", {"jobs": [dict(GOOD_JOB, status="done")]})
    git("commit", "--quiet", "-am", "bad", "--no-verify", cwd=repo)
    bad = git("rev-parse", "HEAD", cwd=repo).strip()
    write(repo, "coordination/jobs.json", {"jobs": [GOOD_JOB]})
    git("commit", "--quiet", "-am", "fixed", "--no-verify", cwd=repo)
    assert validate(repo, "--range", f"{base}..HEAD", "--format", "json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["profile"] == "changes"
    assert [(f["commit"], f["valid"]) for f in report["files"]] == [
        (bad, False),
        (git("rev-parse", "HEAD", cwd=repo).strip(), True),
    ]


def test_range_holds_untouched_records_to_legacy(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy_job = dict(GOOD_JOB, created_at="2025-11-08 10:00")
    write(repo, "coordination/jobs.json", {"jobs": [legacy_job]})
    git("commit", "--quiet", "-am", "legacy", "--no-verify", cwd=repo)
    write(
        repo, "coordination/jobs.json", {"jobs": [legacy_job, dict(GOOD_JOB, id="j2")]}
    )
    git("commit", "--quiet", "-am", "append", "--no-verify", cwd=repo)
    assert validate(repo, "--range", "HEAD~1..HEAD") == 0
    assert validate(repo, "--range", "HEAD~1..HEAD", "--profile", "strict") == 1
    capsys.readouterr()


@pytest.mark.parametrize(
    "args",
    [
        ["--staged", "coordination/jobs.json"],
        ["--range", "-x"],
        ["--range", "nosuchbranch..HEAD"],
        ["--max-problems", "0"],
        ["missing.json"],
        ["--profile", "lenient"],
    ],
)
def test_usage_errors_exit_2(repo: Path, args: list[str]) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "watcher", "validate", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 2, completed.stderr
    assert "error" in completed.stderr


def test_explicit_files_can_be_checked_outside_a_checkout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "coordination/jobs.json", {"jobs": [GOOD_JOB]})
    assert main(["validate", str(tmp_path / "coordination" / "jobs.json")]) == 0
    capsys.readouterr()


def test_staged_all_checks_every_file_in_the_index(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate(repo, "--staged", "--all") == 0
    assert capsys.readouterr().out.strip() == "checked 4 files: all valid"


def test_from_a_subdirectory_the_whole_checkout_is_checked(repo: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "watcher", "validate"],
        cwd=repo / "coordination",
        capture_output=True,
        text=True,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "checked 4 files: all valid"
