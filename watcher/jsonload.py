"""Strict JSON loading, before any schema.

The standard parser is lenient where a coordination file must not be: it keeps the
last of two equal keys, accepts `NaN`, reads integers no other JSON reader keeps
exactly, and auto-detects UTF-16. Here the C parser still does the work, with
hooks that refuse those cases; only when something is wrong does the slower
analysis in `watcher.jsonfaults` run, to say what is wrong and on which line.

Each fault has its own `rule`: `too-large`, `empty`, `byte-order-mark`, `encoding`,
`conflict-marker`, `trailing-comma`, `syntax`, `duplicate-key`,
`non-finite-number`, `large-integer`, `too-deep`. CRLF line ends are a `line-ends`
warning.
"""

from __future__ import annotations

import gc
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from watcher import jsonfaults
from watcher.jsonfaults import MAX_DEPTH, MAX_SAFE_INTEGER, LoadError, fault
from watcher.jsonpaths import line_and_column
from watcher.problems import Problem, Severity

__all__ = ["MAX_BYTES", "MAX_DEPTH", "LoadError", "load_json"]

MAX_BYTES = 8 * 1024 * 1024
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_CONTAINERS = frozenset((dict, list))


class _Refused(Exception):
    """Raised from inside the C parser's hooks; located afterwards."""

    def __init__(self, rule: str) -> None:
        super().__init__(rule)
        self.rule = rule


def load_json(
    data: bytes, path: str, *, max_bytes: int | None = MAX_BYTES
) -> tuple[Any, list[Problem]]:
    """Parse `data`; return the value and warnings, or raise LoadError.

    `max_bytes=None` lifts the size limit, for the one reader that must open an
    oversized document to shrink it (`build-watcher messages archive`).
    """
    _check_bytes(data, path, max_bytes)
    text = _decode(data, path)
    with paused_collection():
        value = _parse(text, path)
        is_too_deep = _is_deeper_than(value, MAX_DEPTH)
    if is_too_deep:
        raise jsonfaults.refusal(text, path, "too-deep")
    return value, _line_end_warnings(text, path)


@contextmanager
def paused_collection() -> Iterator[None]:
    """No cyclic garbage collection while a large tree of new objects is built.

    Parsed JSON (and a copy of it) holds no reference cycles, yet every few
    hundred new containers the collector would walk the growing tree again: on a
    store of 20,000 messages that was a third of the time to parse it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _check_bytes(data: bytes, path: str, max_bytes: int | None) -> None:
    if max_bytes is not None and len(data) > max_bytes:
        raise fault(
            path,
            "too-large",
            f"file is {len(data)} bytes, over the {max_bytes / 2**20:g} MiB "
            f"({max_bytes} bytes) limit for a coordination file",
            "coordination files stay small: archive old records "
            "(`build-watcher messages archive --older-than DAYS`) and keep bulky "
            "data elsewhere",
        )
    if not data.strip():
        raise fault(
            path,
            "empty",
            "file is empty" if not data else "file holds only whitespace",
            "restore the last good version (`git log -- PATH` finds it; then "
            "`git checkout COMMIT -- PATH`), or let the daemon write the file again",
        )
    if data.startswith(UTF8_BOM):
        raise fault(
            path,
            "byte-order-mark",
            "file starts with a UTF-8 byte-order mark, which JSON does not allow",
            "save the file as UTF-8 without a BOM: "
            "`sed -i '1s/^\\xEF\\xBB\\xBF//' PATH`",
        )


def _decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line_start = data.rfind(b"\n", 0, error.start) + 1
        utf16 = data.startswith(UTF16_BOMS)
        detail = (
            "file is UTF-16 (it starts with a UTF-16 byte-order mark)"
            if utf16
            else f"byte 0x{data[error.start]:02x} is not valid UTF-8"
        )
        raise fault(
            path,
            "encoding",
            f"{detail}; coordination files must be UTF-8",
            f"convert it: `iconv -f {'UTF-16' if utf16 else 'LATIN1'} -t UTF-8 PATH`",
            line=data.count(b"\n", 0, error.start) + 1,
            column=len(data[line_start : error.start].decode("utf-8")) + 1,
        ) from None


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise _Refused("duplicate-key")
    return value


def _parse_int(text: str) -> int:
    value = int(text)
    # Fifteen characters cannot exceed 2**53, so most integers stop at this test.
    if len(text) > 15 and abs(value) > MAX_SAFE_INTEGER:
        raise _Refused("large-integer")
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Refused("non-finite-number")
    return value


def _parse_constant(text: str) -> float:
    raise _Refused("non-finite-number")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_pairs,
    parse_int=_parse_int,
    parse_float=_parse_float,
    parse_constant=_parse_constant,
)


def _parse(text: str, path: str) -> Any:
    try:
        return _DECODER.decode(text)
    except _Refused as refused:
        raise jsonfaults.refusal(text, path, refused.rule) from None
    except RecursionError:
        raise jsonfaults.refusal(text, path, "too-deep") from None
    except json.JSONDecodeError as error:
        raise jsonfaults.syntax_error(text, path, error) from None


def _is_deeper_than(value: Any, limit: int) -> bool:
    """Level by level: one list per level keeps this fast on large documents."""
    level = [value] if type(value) in _CONTAINERS else []
    for _depth in range(limit):
        deeper: list[Any] = []
        for container in level:
            children = container.values() if type(container) is dict else container
            deeper += [child for child in children if type(child) in _CONTAINERS]
        if not deeper:
            return False
        level = deeper
    return bool(level)


def _line_end_warnings(text: str, path: str) -> list[Problem]:
    first = text.find("\r\n")
    if first < 0:
        return []
    line, column = line_and_column(text, first)
    return [
        Problem(
            path,
            f"{text.count(chr(13) + chr(10))} line(s) end with CRLF; the product "
            "writes LF",
            severity=Severity.WARNING,
            line=line,
            column=column,
            rule="line-ends",
            hint="convert with `dos2unix PATH` or `sed -i 's/\\r$//' PATH`",
        )
    ]
