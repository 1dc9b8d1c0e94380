"""A validate run rendered: text lines for people, one JSON document for programs.

Text has one line per problem, `path:line:col: $.json.path: message [rule]`,
followed by its hint; per file, errors come first with the best match leading,
then warnings and notes, and past `limit` lines a `(+N more)` count stands for
the rest. JSON carries every problem, with the same fields.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

from watcher.inspection import CheckedFile
from watcher.problems import Problem, Severity

DEFAULT_LIMIT = 10
_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
_PREFIX = {Severity.ERROR: "", Severity.WARNING: "warning: ", Severity.INFO: "note: "}
_NOUNS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


class Summary(NamedTuple):
    files: int
    invalid: int
    counts: Counter[Severity]

    @property
    def is_valid(self) -> bool:
        return self.invalid == 0

    def to_json(self) -> dict[str, int]:
        return {
            "files": self.files,
            "invalid": self.invalid,
            "errors": self.counts[Severity.ERROR],
            "warnings": self.counts[Severity.WARNING],
            "notes": self.counts[Severity.INFO],
        }


def summarize(checked: Sequence[CheckedFile]) -> Summary:
    counts: Counter[Severity] = Counter(
        problem.severity for file in checked for problem in file.result.problems
    )
    return Summary(len(checked), sum(not file.is_valid for file in checked), counts)


def render_text(
    checked: Sequence[CheckedFile], *, limit: int = DEFAULT_LIMIT, quiet: bool = False
) -> str:
    """Problem lines for every file, then one summary line (unless `quiet`)."""
    lines: list[str] = []
    for file in checked:
        lines.extend(_file_lines(file, limit, quiet))
    if not quiet:
        lines.append(_summary_line(summarize(checked)))
    return "\n".join(lines)


def _file_lines(file: CheckedFile, limit: int, quiet: bool) -> list[str]:
    problems = sorted(file.result.problems, key=lambda p: _ORDER[p.severity])
    if quiet:
        problems = [problem for problem in problems if problem.is_error]
    shown, rest = problems[:limit], problems[limit:]
    lines: list[str] = []
    hints: set[str] = set()
    for problem in shown:
        lines.append(problem_line(file.label, problem))
        if problem.hint and problem.hint not in hints:
            hints.add(problem.hint)
            lines.append(f"  hint: {problem.hint}")
    if rest:
        counts = Counter(problem.severity for problem in rest)
        lines.append(f"{file.label}: (+{len(rest)} more: {_count(counts)})")
    return lines


def problem_line(label: str, problem: Problem) -> str:
    """`label:line:col: $.json.path: message [rule]`."""
    location = f"{label}:{problem.line}:{problem.column}" if problem.line else label
    rule = f" [{problem.rule}]" if problem.rule else ""
    message = _PREFIX[problem.severity] + problem.message
    return f"{location}: {problem.json_path}: {message}{rule}"


def _count(counts: Counter[Severity]) -> str:
    return ", ".join(
        f"{counts[severity]} {_NOUNS[severity]}{'s' if counts[severity] != 1 else ''}"
        for severity in _ORDER
        if counts[severity]
    )


def _summary_line(summary: Summary) -> str:
    files = f"{summary.files} file{'s' if summary.files != 1 else ''}"
    found = _count(summary.counts)
    verdict = "all valid" if summary.is_valid else f"{summary.invalid} invalid"
    return f"checked {files}: {verdict}" + (f" ({found})" if found else "")


def render_json(checked: Sequence[CheckedFile], judgement: str) -> str:
    """Every problem of every file, with the summary; `judgement` names the profile."""
    summary = summarize(checked)
    document: dict[str, Any] = {
        "valid": summary.is_valid,
        "profile": judgement,
        "summary": summary.to_json(),
        "files": [_file_json(file) for file in checked],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def _file_json(file: CheckedFile) -> dict[str, Any]:
    return {
        "path": file.result.path,
        "commit": file.commit,
        "kind": file.result.kind.value if file.result.kind else None,
        "valid": file.is_valid,
        "problems": [problem.to_json() for problem in file.result.problems],
    }
