"""JSON paths and where they sit in a document's text.

The fast loader and the schema validator work on parsed values, which have no
positions. When something is wrong, this module walks the text once more with a
small tokenizer to say on which line and column a JSON path starts, or where the
first token a check rejects lies. It only runs to report a fault, never for a
document that is fine.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

PathPart = str | int

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|([{}\[\]:,])|([^\s{}\[\]:,"]+))', re.S)


class Token(NamedTuple):
    """A key or a value start in the text: its offset, JSON path and nesting depth."""

    offset: int
    path: tuple[PathPart, ...]
    text: str
    is_key: bool
    depth: int


def format_path(parts: Iterable[PathPart]) -> str:
    """`$.jobs[3].status`; keys that are not identifiers in brackets and quotes."""
    rendered = ["$"]
    for part in parts:
        if isinstance(part, int):
            rendered.append(f"[{part}]")
        elif _IDENTIFIER.match(part):
            rendered.append(f".{part}")
        else:
            rendered.append(f"[{json.dumps(part, ensure_ascii=False)}]")
    return "".join(rendered)


def line_and_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of `offset` in `text`."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


class LineIndex:
    """Line and column of many offsets in one text, without rescanning it each time."""

    def __init__(self, text: str) -> None:
        self._starts = [0, *(match.end() for match in re.finditer("\n", text))]

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect_right(self._starts, offset)
        return line, offset - self._starts[line - 1] + 1


# An open container while tokenizing: [path, is_object, index, key, expects_key].
_Frame = list[Any]


def _child(frame: _Frame) -> tuple[PathPart, ...]:
    return (*frame[0], frame[3] if frame[1] else frame[2])


def tokens(text: str) -> Iterator[Token]:
    """Every key and every value start of a syntactically valid document, in order."""
    stack: list[_Frame] = []
    for match in _TOKEN.finditer(text):
        string, mark, bare = match.groups()
        if mark is not None:
            if mark in "{[":
                path = _child(stack[-1]) if stack else ()
                stack.append([path, mark == "{", 0, None, mark == "{"])
                yield Token(match.start(2), path, mark, False, len(stack))
            elif mark == ",":
                stack[-1][2] += 1
                stack[-1][4] = stack[-1][1]
            elif mark != ":":
                stack.pop()
            continue
        literal = string if string is not None else bare
        offset = match.start(1) if string is not None else match.start(3)
        frame = stack[-1] if stack else None
        if frame is not None and frame[4]:
            frame[3], frame[4] = _key(literal), False
            yield Token(offset, _child(frame), literal, True, len(stack))
        else:
            path = _child(frame) if frame is not None else ()
            yield Token(offset, path, literal, False, len(stack))


def _key(literal: str) -> str:
    key: str = json.loads(literal) if "\\" in literal else literal[1:-1]
    return key


def find_token(text: str, predicate: Callable[[Token], bool]) -> Token | None:
    """The first token for which `predicate` holds."""
    return next((token for token in tokens(text) if predicate(token)), None)


def find_duplicate_key(text: str) -> Token | None:
    """The second occurrence of the first key repeated within one object."""
    seen: set[tuple[PathPart, ...]] = set()
    for token in tokens(text):
        if token.is_key:
            if token.path in seen:
                return token
            seen.add(token.path)
    return None


def locate_paths(
    text: str, paths: Iterable[tuple[PathPart, ...]]
) -> dict[tuple[PathPart, ...], int]:
    """Offsets where the values at `paths` start."""
    wanted = set(paths)
    found: dict[tuple[PathPart, ...], int] = {}
    if () in wanted:
        found[()] = len(text) - len(text.lstrip())
    for token in tokens(text):
        if not token.is_key and token.path in wanted and token.path not in found:
            found[token.path] = token.offset
            if len(found) == len(wanted):
                break
    return found
