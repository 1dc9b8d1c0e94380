from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git
from watcher.main import main


def run_log(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_corpus_reads_as_an_audit_trail(
    corpus_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_log(capsys, "--repo", str(corpus_repo), "log")
    lines = out.splitlines()

    assert code == 0
    assert lines[0].startswith("2025-10-29 14:54:44  624c0724  server.joined")
    assert any(
        "job.claimed" in line
        and "build1 claimed job_1761779789 (build, ExternalNew)" in line
        for line in lines
    )
    assert any("build2 -> build1: " in line for line in lines)
    assert sum("document.invalid" in line for line in lines) == 17
    assert all("\x1b" not in line for line in lines)


def test_json_for_one_server_since_a_commit(
    corpus_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_log(
        capsys,
        "--repo",
        str(corpus_repo),
        "log",
        "--since",
        "HEAD~400",
        "--node",
        "build1",
        "--format",
        "json",
    )
    data = json.loads(out)
    received = [e for e in data["events"] if e["kind"] == "message.received"]

    assert code == 0
    assert data["node"] == "build1"
    assert received
    assert all(e["record"]["from"] != "build1" for e in received)
    assert all(e["record"]["to"] in ("build1", "all") for e in received)
    assert all(e["time"].endswith("Z") and e["summary"] for e in data["events"])


def test_text_from_the_repository_cannot_break_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    git("init", "--quiet", str(repo), cwd=tmp_path)
    message = {
        "id": "m1",
        "from": "build2",
        "to": "all",
        "subject": "line one\nline two \x1b[31mred",
        "timestamp": "2025-11-04T10:00:00Z",
    }
    (repo / "coordination").mkdir()
    (repo / "coordination/messages.json").write_text(
        json.dumps({"messages": [message]})
    )
    git("add", "-A", cwd=repo)
    git("commit", "--quiet", "-m", "send", cwd=repo)

    code, out, _ = run_log(capsys, "--repo", str(repo), "log")

    assert code == 0
    assert out.count("\n") == 1
    assert "\x1b" not in out
    assert "line one line two" in out


def test_an_unknown_revision_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    git("init", "--quiet", str(repo), cwd=tmp_path)
    git("commit", "--quiet", "--allow-empty", "-m", "empty", cwd=repo)

    code, _, err = run_log(capsys, "--repo", str(repo), "log", "--since", "nosuch")
    usage, _, usage_err = run_log(capsys, "--repo", str(repo), "log", "--since=-p")

    assert code == 1
    assert "'nosuch' names no commit" in err
    assert usage == 2
    assert "is not a revision" in usage_err
