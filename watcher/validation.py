"""Validation of coordination documents against the bundled schemas.

PLACEHOLDER INTERFACE: the schema checks replace this body.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from watcher.jsonload import LoadError, load_json
from watcher.layout import DocumentKind, kind_of
from watcher.problems import Problem


class Profile(enum.Enum):
    STRICT = "strict"
    LEGACY = "legacy"


@dataclass
class DocumentResult:
    """The outcome of checking one version of one file."""

    path: str
    kind: DocumentKind | None
    value: Any = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def is_valid(self) -> bool:
        return not any(problem.is_error for problem in self.problems)


def check_document(path: str, data: bytes, profile: Profile) -> DocumentResult:
    """Parse then validate one file's bytes."""
    result = DocumentResult(path, kind_of(path))
    try:
        result.value, warnings = load_json(data, path)
    except LoadError as error:
        result.problems.append(error.problem)
        return result
    result.problems.extend(warnings)
    result.problems.extend(check_value(path, result.value, profile))
    return result


def check_value(path: str, value: Any, profile: Profile) -> list[Problem]:
    """Schema problems of an already parsed value (no line numbers)."""
    return []
