"""What is wrong with a document: one record per finding, rendered elsewhere."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Problem:
    """One finding about one file.

    `line` and `column` are 1-based and 0 when unknown. `json_path` is a JSONPath
    such as `$.jobs[3].status` (`$` for the whole document). `rule` names what was
    broken (a JSON Schema keyword such as `enum`, or a loader rule such as
    `duplicate-key`).
    """

    path: str
    message: str
    severity: Severity = Severity.ERROR
    line: int = 0
    column: int = 0
    json_path: str = "$"
    rule: str = ""
    hint: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def location(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.column}"
        return self.path

    def describe(self) -> str:
        """`path:line:col: $.json.path: message`, as an error quotes one problem."""
        return f"{self.location()}: {self.json_path}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data
