"""Credential detection for text about to be pushed: once in git, it is in every clone.

Findings say what kind of secret was seen and where (field, line, column) but never
carry the secret itself, so an error message built from them is safe to print and
to log.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class SecretFinding:
    """One place in a text that looks like a credential."""

    kind: str
    field: str
    line: int
    column: int

    def describe(self) -> str:
        return f"{self.field} line {self.line}, column {self.column}: {self.kind}"


@dataclass(frozen=True)
class _Pattern:
    kind: str
    regex: re.Pattern[str]
    value_group: int = 0


_ASSIGN = r"""["']?\s*[:=]\s*["']?"""
_PATTERNS = (
    _Pattern(
        "a private key block",
        re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    ),
    _Pattern(
        "a GitHub token",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"),
    ),
    _Pattern("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    _Pattern("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    _Pattern(
        "a JSON web token",
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    ),
    _Pattern(
        "a password assignment",
        re.compile(
            r"(?i)(?:(?<![a-z])(?:password|passwd|passphrase)\b"
            + _ASSIGN
            + r"|--(?:password|passwd)\s+)([^\s\"',;]+)"
        ),
        value_group=1,
    ),
    _Pattern(
        "a password in a URL",
        re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@]+:([^\s/@]+)@"),
        value_group=1,
    ),
    _Pattern(
        "an API key or token assignment",
        re.compile(
            r"(?i)(?<![a-z])(?:api[_-]?key|apikey|access[_-]?key|secret[_-]?"
            r"(?:access[_-]?)?key|client[_-]?secret|(?:auth|access)[_-]?token|token|"
            r"secret)\b" + _ASSIGN + r"([A-Za-z0-9_\-+/=.]{20,})"
        ),
        value_group=1,
    ),
)

# Values that stand for a secret without being one: `password: [REDACTED]`,
# `password=$DB_PASSWORD`, `password: <your password>`, `password: ****`.
_PLACEHOLDER = re.compile(
    r"^(?:[\[<({$%].*|\*+|x+|\.+|-+|(?i:redacted|hidden|none|null|n/a|unset))$"
)


def find_secrets(text: str, field: str = "body") -> list[SecretFinding]:
    """Every credential-looking span in `text`, first occurrence of each place."""
    findings: dict[int, SecretFinding] = {}
    for pattern in _PATTERNS:
        for offset in _matches(pattern, text):
            if offset not in findings:
                line, column = _line_and_column(text, offset)
                findings[offset] = SecretFinding(pattern.kind, field, line, column)
    return [findings[offset] for offset in sorted(findings)]


def _matches(pattern: _Pattern, text: str) -> Iterator[int]:
    for match in pattern.regex.finditer(text):
        value = match.group(pattern.value_group)
        if pattern.value_group and _is_placeholder(value):
            continue
        yield match.start()


def _is_placeholder(value: str) -> bool:
    return len(value) < 4 or bool(_PLACEHOLDER.match(value))


def _line_and_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def describe_findings(findings: list[SecretFinding], limit: int = 3) -> str:
    """A one-line summary naming where, never what: safe to print and to log."""
    shown = "; ".join(finding.describe() for finding in findings[:limit])
    rest = len(findings) - limit
    return shown + (f"; and {rest} more" if rest > 0 else "")
