"""Strict JSON loading, before any schema.

PLACEHOLDER INTERFACE: the full loader (line and column for every fault, duplicate
keys, conflict markers, NaN, depth and size limits) replaces this body.
"""

from __future__ import annotations

import json
from typing import Any

from watcher.problems import Problem


class LoadError(Exception):
    """The bytes are not a JSON document this product accepts."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def load_json(data: bytes, path: str) -> tuple[Any, list[Problem]]:
    """Parse `data`; return the value and warnings, or raise LoadError."""
    try:
        return json.loads(data), []
    except ValueError as error:
        raise LoadError(Problem(path, str(error), rule="syntax")) from error
