"""What is wrong with text the strict loader refused, and where.

Only runs once loading has failed, so it may walk the text again: it names the
duplicate key, the conflict marker, the trailing comma or the unquoted word, with
its line, column and JSON path, and a hint on how to fix it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable

from watcher import jsonpaths
from watcher.jsonpaths import Token
from watcher.problems import Problem

MAX_DEPTH = 64
MAX_SAFE_INTEGER = 2**53 - 1

_CONFLICT_MARKER = re.compile(r"^(?:<{7}|\|{7}|={7}|>{7})(?: .*)?$", re.M)
_VALUE_END = re.compile(r"[,}\]\r\n]|$")
_SYNTAX_HINT = "fix the JSON at this position, then run `build-watcher validate PATH`"


class LoadError(Exception):
    """The bytes are not a JSON document this product accepts."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def fault(
    path: str,
    rule: str,
    message: str,
    hint: str,
    *,
    line: int = 1,
    column: int = 1,
    json_path: str = "$",
) -> LoadError:
    """A LoadError for one fault (position 1:1 when it concerns the whole file)."""
    return LoadError(
        Problem(
            path,
            message,
            line=line,
            column=column,
            json_path=json_path,
            rule=rule,
            hint=hint,
        )
    )


def refusal(text: str, path: str, rule: str) -> LoadError:
    """Find the token a parser hook refused in syntactically valid text."""
    if rule == "duplicate-key":
        token = jsonpaths.find_duplicate_key(text)
    else:
        token = jsonpaths.find_token(text, _REFUSED_TOKENS[rule])
    message, hint = _describe_refusal(rule, token)
    if token is None:  # unreachable unless the tokenizer and the parser disagree
        return fault(path, rule, message, hint, line=0, column=0)
    line, column = jsonpaths.line_and_column(text, token.offset)
    json_path = jsonpaths.format_path(token.path)
    return fault(
        path, rule, message, hint, line=line, column=column, json_path=json_path
    )


def _is_non_finite(token: Token) -> bool:
    if token.is_key or token.text[0] not in "-NI0123456789":
        return False
    return token.text in ("NaN", "Infinity", "-Infinity") or math.isinf(
        float(token.text)
    )


def _is_large_integer(token: Token) -> bool:
    if token.is_key or not re.fullmatch(r"-?\d{16,}", token.text):
        return False
    return abs(int(token.text)) > MAX_SAFE_INTEGER


def _is_too_deep(token: Token) -> bool:
    return token.text in ("{", "[") and token.depth > MAX_DEPTH


_REFUSED_TOKENS: dict[str, Callable[[Token], bool]] = {
    "non-finite-number": _is_non_finite,
    "large-integer": _is_large_integer,
    "too-deep": _is_too_deep,
}


def _describe_refusal(rule: str, token: Token | None) -> tuple[str, str]:
    text = token.text if token else "?"
    if rule == "duplicate-key":
        return (
            f"duplicate key {text} in one object (a lenient parser would silently "
            "keep only the last one)",
            "keep one member with this key, merging the two values by hand",
        )
    if rule == "non-finite-number":
        return (
            f"`{text}` is not a finite number, which JSON cannot represent",
            "write a finite number, or null for a missing value",
        )
    if rule == "large-integer":
        return (
            f"integer {text} is beyond 2^53 - 1, so readers such as JavaScript and "
            "jq do not keep it exactly",
            "store a value this large as a string",
        )
    return (
        f"nesting is deeper than {MAX_DEPTH} levels",
        "coordination documents are shallow: flatten this structure",
    )


def syntax_error(text: str, path: str, error: json.JSONDecodeError) -> LoadError:
    """The most helpful description of why the text is not JSON."""
    marker = _CONFLICT_MARKER.search(text)
    if marker is not None:
        return _conflict(text, path, marker)
    rule, offset, message = _explain_syntax(text, error)
    line, column = jsonpaths.line_and_column(text, offset)
    return fault(path, rule, message, _SYNTAX_HINT, line=line, column=column)


def _conflict(text: str, path: str, marker: re.Match[str]) -> LoadError:
    line, _ = jsonpaths.line_and_column(text, marker.start())
    return fault(
        path,
        "conflict-marker",
        f"git conflict marker `{marker.group()[:40]}` on line {line}: a merge left "
        "both sides in the file",
        "keep the records of both sides (jobs and messages by id, locks by name), "
        "delete the marker lines, then run `build-watcher validate PATH`; "
        "`build-watcher hooks install` registers `build-watcher merge-driver`, which "
        "merges these files record by record and never writes markers",
        line=line,
    )


def _explain_syntax(text: str, error: json.JSONDecodeError) -> tuple[str, int, str]:
    position = error.pos
    before = text[:position].rstrip()
    closing = text[position : position + 1]
    if before.endswith(",") and closing in ("}", "]"):
        message = f"trailing comma before `{closing}`: JSON allows no comma there"
        return "trailing-comma", len(before) - 1, message
    if text.startswith(("//", "/*"), position):
        return "syntax", position, "comments are not allowed in JSON"
    unquoted = _unquoted_text(text, position, error.msg)
    if unquoted is not None:
        start, raw, is_key = unquoted
        what = "key" if is_key else "string"
        if raw.startswith("'"):
            return "syntax", start, f"single-quoted {what}: JSON needs double quotes"
        return (
            "syntax",
            start,
            f"unquoted {what} `{raw[:40]}`: JSON needs double quotes",
        )
    return "syntax", position, _plain_reason(error.msg)


_REASONS = {
    "Expecting value": "expected a value (string, number, object, array, true, "
    "false or null)",
    "Expecting ',' delimiter": "expected `,` between two items",
    "Expecting ':' delimiter": "expected `:` after the key",
    "Extra data": "text after the end of the JSON document",
    "Unterminated string starting at": "string is not closed",
    "Invalid control character at": "raw control character in a string "
    "(write it escaped, such as \\n or \\t)",
    "Invalid \\escape": "invalid escape sequence in a string",
}


def _plain_reason(reason: str) -> str:
    return _REASONS.get(reason, reason)


def _unquoted_text(
    text: str, position: int, reason: str
) -> tuple[int, str, bool] | None:
    """A bare word where a string belongs, as in `"time": 2025-10-29T15:58:06Z,`."""
    if reason.startswith("Expecting property name"):
        word = text[position:].split(":", 1)[0].split("\n", 1)[0].strip()
        return (position, word, True) if word and word[0] not in "}]" else None
    start = position
    while start > 0 and text[start - 1] not in ",:[{ \t\r\n":
        start -= 1
    end = _VALUE_END.search(text, position)
    raw = text[start : end.start() if end else len(text)].strip()
    if not raw or raw[0] in '"{[' or _is_json_scalar(raw):
        return None
    return start, raw, False


def _is_json_scalar(raw: str) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True
