"""What a schema check found, said plainly: one `Finding` per broken rule.

A finding has the JSON path of the value concerned, a message that names the
value and what was expected (never the whole offending object), the rule broken
(a JSON Schema keyword, or `unique-id` for the one check JSON Schema cannot
express), and a hint. Positions in the text are added later, and only when the
text is at hand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from typing import Any, NamedTuple

from watcher.layout import DocumentKind
from watcher.recordmemory import RECORDS, record_key
from watcher.schemas import (
    MESSAGES_KEYWORD,
    Profile,
    Validator,
    split_validators,
    validator,
)

PathParts = tuple[str | int, ...]

MIGRATE_HINT = "`build-watcher migrate` rewrites a legacy repository in the strict form"
TIMESTAMP_HINT = "write RFC 3339 in UTC with Z, such as 2025-11-04T20:45:00Z"
RECORD_LISTS = {
    DocumentKind.JOBS: "jobs",
    DocumentKind.MESSAGES: "messages",
    DocumentKind.MESSAGE_ARCHIVE: "messages",
}
_REQUIRED = re.compile(r"^(.*) is a required property$")
_JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


class Finding(NamedTuple):
    parts: PathParts
    message: str
    rule: str
    hint: str = ""
    related: tuple[PathParts, ...] = ()  # other places the same fault involves

    def is_within(self, prefix: PathParts) -> bool:
        return self.parts[: len(prefix)] == prefix


def document_findings(
    kind: DocumentKind, profile: Profile, value: Any, skip: Collection[int] = ()
) -> list[Finding]:
    """Every schema error of a document of `kind`, the most relevant first.

    Jobs and messages are checked record by record, and what each distinct
    record broke is remembered: replaying history validates the same messages
    in version after version. Records whose index is in `skip` are left out (the
    caller knows them to be valid already).
    """
    member = RECORD_LISTS.get(kind)
    records: Any = value.get(member) if member and isinstance(value, dict) else None
    is_listed = member is not None and isinstance(records, list)
    split = split_validators(kind, profile, member) if member and is_listed else None
    if member is None or split is None:
        return schema_findings(validator(kind, profile), value)
    findings = schema_findings(split[0], value)
    for index, record in enumerate(records):
        if index in skip:
            continue
        for finding in record_findings(kind, profile, member, record):
            findings.append(_within((member, index), finding))
    return findings


def record_findings(
    kind: DocumentKind, profile: Profile, member: str, record: Any
) -> tuple[Finding, ...]:
    """The schema errors of one record of `member`, remembered by its content."""
    key = record_key(kind, profile, member, record)
    known = RECORDS.get(key) if key is not None else None
    if known is not None:
        return known
    split = split_validators(kind, profile, member)
    assert split is not None  # only called once the split exists
    # Validated as JSON would read it back: a tuple an operation put there is a list.
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False)
    findings = tuple(schema_findings(split[1], json.loads(canonical)))
    if key is not None:
        RECORDS.put(key, findings)
    return findings


def _within(prefix: PathParts, finding: Finding) -> Finding:
    related = tuple((*prefix, *place) for place in finding.related)
    return finding._replace(parts=(*prefix, *finding.parts), related=related)


def schema_findings(checker: Validator, value: Any) -> list[Finding]:
    """Every schema error, the most relevant first (as `jsonschema.best_match`)."""
    errors = list(checker.iter_errors(value))
    if not errors:
        return []
    from jsonschema.exceptions import best_match, relevance

    top = max(errors, key=relevance)
    ordered = [top, *(error for error in errors if error is not top)]
    return [_finding(best_match([error])) for error in ordered]


def duplicate_ids(kind: DocumentKind, value: Any) -> list[Finding]:
    """Records sharing an id, reported at the second occurrence's `id`."""
    container = RECORD_LISTS.get(kind)
    records = value.get(container) if container and isinstance(value, dict) else None
    if not isinstance(records, list):
        return []
    first: dict[Any, int] = {}
    found = []
    for index, record in enumerate(records):
        record_id = record.get("id") if isinstance(record, dict) else None
        if not isinstance(record_id, str | int):
            continue
        if record_id in first:
            found.append(
                _duplicate(container or "", index, record_id, first[record_id])
            )
        else:
            first[record_id] = index
    return found


def _duplicate(container: str, index: int, record_id: Any, first: int) -> Finding:
    return Finding(
        (container, index, "id"),
        f"duplicate id {json.dumps(record_id)}: $.{container}[{first}] has it too",
        "unique-id",
        "give one of the records a new id (the product's ids never repeat); "
        "if both are the same record, keep one",
        related=((container, first, "id"),),
    )


def _finding(error: Any) -> Finding:
    message, hint = _describe(error)
    return Finding(tuple(error.absolute_path), message, str(error.validator), hint)


def _describe(error: Any) -> tuple[str, str]:
    custom = _custom_message(error)
    if custom is not None:
        return custom, MIGRATE_HINT
    keyword, instance, expected = error.validator, error.instance, error.validator_value
    if keyword == "format":
        return f"{show(instance)} is not an RFC 3339 UTC timestamp", TIMESTAMP_HINT
    if keyword == "type":
        wanted = " or ".join(expected if isinstance(expected, list) else [expected])
        found = show(instance)
        if not isinstance(instance, dict | list):
            found = f"{_type_name(instance)} {found}"
        return f"expected {wanted}, found {found}", ""
    if keyword == "enum":
        choices = ", ".join(show(choice) for choice in expected)
        return (
            f"{show(instance)} is not one of {choices}",
            "use one of the listed values",
        )
    if keyword == "required":
        match = _REQUIRED.match(error.message)
        name = match.group(1).strip("'\"") if match else "?"
        return f"missing required field `{name}`", ""
    if keyword == "minLength" and expected == 1:
        return "must not be empty", ""
    if keyword in ("minimum", "exclusiveMinimum"):
        relation = "at least" if keyword == "minimum" else "more than"
        return f"{show(instance)} must be {relation} {expected}", ""
    return _shorten(error.message), ""


def _custom_message(error: Any) -> str | None:
    schema = error.schema if isinstance(error.schema, dict) else {}
    messages = schema.get(MESSAGES_KEYWORD, {})
    custom = messages.get(error.validator)
    return custom.replace("{value}", show(error.instance)) if custom else None


def _type_name(instance: Any) -> str:
    return _JSON_TYPES.get(type(instance), type(instance).__name__)


def show(value: Any, limit: int = 60) -> str:
    """A value as JSON, cut short: messages never quote a whole document."""
    if isinstance(value, dict):
        return "an object" if value else "{}"
    if isinstance(value, list):
        return f"an array of {len(value)}" if value else "[]"
    return _shorten(json.dumps(value, ensure_ascii=False), limit)


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def covered(finding: Finding, others: Iterable[Finding]) -> bool:
    """Whether another finding is at the same place or encloses it."""
    return any(finding.is_within(other.parts) for other in others)
