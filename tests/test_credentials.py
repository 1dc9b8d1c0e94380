"""Credential detection: real token shapes are caught, ordinary prose is not."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from watcher.credentials import describe_findings, find_secrets

# Built from parts so that this file itself does not look like it holds secrets.
GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0" * 2
GITHUB_PAT = "github_pat_" + "11ABCDEFG0" * 4
AWS_KEY = "AKIA" + "IOSFODNN7EXAMPLE"
SLACK_TOKEN = "xoxb-" + "1234567890-abcdefghij"
JWT = (
    "eyJhbGciOiJIUzI1NiJ9" + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0" + ".dozjgNryP4J3jVmNHl0w5N"
)
PRIVATE_KEY = "-----BEGIN " + "OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXkt\n"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (f"use {GITHUB_TOKEN} for the mirror", "a GitHub token"),
        (f"token is {GITHUB_PAT}", "a GitHub token"),
        (f"aws {AWS_KEY} works", "an AWS access key id"),
        (f"slack {SLACK_TOKEN}", "a Slack token"),
        (f"Authorization: Bearer {JWT}", "a JSON web token"),
        (PRIVATE_KEY, "a private key block"),
        ("-----BEGIN RSA PRIVATE KEY-----", "a private key block"),
        ("-----BEGIN PGP PRIVATE KEY BLOCK-----", "a private key block"),
        ("Password: hunter2!", "a password assignment"),
        ("db_password = 'S3cr3t-value'", "a password assignment"),
        ('{"password": "tr0ub4dor"}', "a password assignment"),
        ("mysql --password s3cr3tpass", "a password assignment"),
        ("clone https://deploy:pa55word@git.example.invalid/x", "a password in a URL"),
        ("api_key=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5", "an API key or token assignment"),
        ("token: 0123456789abcdef0123456789abcdef", "an API key or token assignment"),
    ],
)
def test_secret_shapes_are_found(text: str, kind: str) -> None:
    findings = find_secrets(text)

    assert [finding.kind for finding in findings][:1] == [kind]


@pytest.mark.parametrize(
    "text",
    [
        "Password: [REDACTED]",
        "password=$DB_PASSWORD",
        "password: <ask the operator>",
        "password: ****",
        "the password is required for the Jira board",
        "reset your password tomorrow",
        "Existing API token plus credentials work here",
        "client = Client(jwt_token='...')",
        "JWT: HS256 for Day-1 (env BROKER_JWT_SECRET)",
        "token: short",
        "see https://example.invalid/path@v2",
        "Build 4242 of commit 3f2a9c1 passed on build2",
    ],
)
def test_ordinary_text_is_not_flagged(text: str) -> None:
    assert find_secrets(text) == []


def test_finding_says_where_without_the_secret() -> None:
    text = f"line one\n  key {GITHUB_TOKEN}\n"

    findings = find_secrets(text, field="body")
    summary = describe_findings(findings)

    assert (findings[0].line, findings[0].column) == (2, 7)
    assert summary == "body line 2, column 7: a GitHub token"
    assert GITHUB_TOKEN not in summary
    assert GITHUB_TOKEN[4:12] not in repr(findings)


def test_summary_counts_findings_beyond_the_limit() -> None:
    text = "\n".join(f"password={n}abcdef" for n in range(5))

    summary = describe_findings(find_secrets(text), limit=2)

    assert summary.endswith("; and 3 more")


def test_no_message_in_the_real_history_is_flagged(corpus_repo: Path) -> None:
    revisions = subprocess.run(
        ["git", "log", "--format=%H", "--", "coordination/messages.json"],
        cwd=corpus_repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    texts: set[str] = set()
    for revision in revisions[::10]:
        shown = subprocess.run(
            ["git", "show", f"{revision}:coordination/messages.json"],
            cwd=corpus_repo,
            capture_output=True,
            check=True,
        ).stdout
        for message in json.loads(shown)["messages"]:
            texts.update((message.get("subject", ""), message.get("body", "")))

    flagged = [text[:60] for text in texts if find_secrets(text)]

    assert len(texts) > 100
    assert flagged == []


@pytest.mark.parametrize(
    "text",
    [
        "GITHUB_TOKEN=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5",
        "aws_secret_access_key = wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY",
        "export DB_PASSWORD=hunter2hunter2",
    ],
)
def test_prefixed_variable_names_are_found(text: str) -> None:
    assert find_secrets(text) != []
