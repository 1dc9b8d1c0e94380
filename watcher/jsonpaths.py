"""JSON paths and where they sit in a document's text.

The fast loader and the schema validator work on parsed values, which have no
positions. When something is wrong, this module walks the text once more with a
small tokenizer to say on which line and column a JSON path starts, or where the
first token a check rejects lies. It is only used to report a fault, never on the
path of a document that is fine, so it favours clarity over speed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

PathPart = str | int

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|([{}\[\]:,])|([^\s{}\[\]:,"]+))', re.S)


@dataclass(frozen=True)
class Token:
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


class _Frame:
    """One open object or array while tokenizing."""

    def __init__(self, path: tuple[PathPart, ...], is_object: bool) -> None:
        self.path = path
        self.is_object = is_object
        self.index = 0
        self.key: str | None = None
        self.expect_key = is_object

    def child_path(self) -> tuple[PathPart, ...]:
        if self.is_object:
            return (*self.path, self.key or "")
        return (*self.path, self.index)


def tokens(text: str) -> Iterator[Token]:
    """Every key and every value start of a syntactically valid document, in order."""
    stack: list[_Frame] = []
    for match in _TOKEN.finditer(text):
        string, punctuation, bare = match.groups()
        offset = (
            match.start(1)
            if string
            else match.start(2)
            if punctuation
            else match.start(3)
        )
        if punctuation:
            _punctuate(punctuation, stack, offset)
            if punctuation in "{[":
                yield Token(offset, stack[-1].path, punctuation, False, len(stack))
            continue
        token_text = string if string is not None else bare
        frame = stack[-1] if stack else None
        if frame is not None and frame.is_object and frame.expect_key:
            frame.key = _key(token_text)
            frame.expect_key = False
            yield Token(offset, frame.child_path(), token_text, True, len(stack))
        else:
            yield Token(
                offset,
                frame.child_path() if frame else (),
                token_text,
                False,
                len(stack),
            )


def _key(literal: str) -> str:
    key: str = json.loads(literal) if "\\" in literal else literal[1:-1]
    return key


def _punctuate(mark: str, stack: list[_Frame], offset: int) -> None:
    if mark in "{[":
        parent = stack[-1] if stack else None
        path = parent.child_path() if parent else ()
        stack.append(_Frame(path, mark == "{"))
    elif mark in "}]":
        stack.pop()
    elif mark == "," and stack:
        stack[-1].index += 1
        stack[-1].expect_key = stack[-1].is_object


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
