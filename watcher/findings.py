"""What a schema check found, said plainly: one `Finding` per broken rule.

A finding has the JSON path of the value concerned, a message that names the
value and what was expected (never the whole offending object), the rule broken
(a JSON Schema keyword, or `unique-id` for the one check JSON Schema cannot
express), and a hint. Positions in the text are added later, and only when the
text is at hand.
"""

from __future__ import annotations

import functools
import json
import marshal
import re
from _blake2 import blake2b  # hashlib.blake2b, without hashlib loading OpenSSL
from collections.abc import Collection, Iterable
from typing import Any, NamedTuple

from watcher.layout import DocumentKind
from watcher.schemas import (
    MESSAGES_KEYWORD,
    Profile,
    Validator,
    split_validators,
    validator,
)

PathParts = tuple[str | int, ...]
DIGEST_SIZE = 16  # bytes of a record's digest: collisions are out of reach

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


class RecordMemory:
    """What each distinct record broke, by a digest of its content.

    Records repeat from one version of a document to the next: a daemon that
    follows a store of 10,000 messages would otherwise validate them all again
    for every message added. Two generations bound the memory: when the newer
    fills up it becomes the older and the older is dropped; a record found in
    the older moves back to the newer. So a store smaller than `capacity` stays
    remembered whole, however often it is read. Records found valid can be kept
    between processes (`watcher.verdicts`).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._newer: dict[bytes, tuple[Finding, ...]] = {}
        self._older: dict[bytes, tuple[Finding, ...]] = {}
        self._fresh_valid: list[bytes] = []

    def get(self, key: bytes) -> tuple[Finding, ...] | None:
        found = self._newer.get(key)
        if found is None:
            found = self._older.get(key)
            if found is not None:
                self._keep(key, found)
        return found

    def put(self, key: bytes, findings: tuple[Finding, ...]) -> None:
        if not findings and len(self._fresh_valid) < self.capacity:
            self._fresh_valid.append(key)
        self._keep(key, findings)

    def _keep(self, key: bytes, findings: tuple[Finding, ...]) -> None:
        self._newer[key] = findings
        if len(self._newer) >= self.capacity:
            self._older, self._newer = self._newer, {}

    def seed_valid(self, keys: Iterable[bytes]) -> None:
        """Records known, from elsewhere, to break nothing."""
        for key in keys:
            self._keep(key, ())

    def take_fresh_valid(self) -> list[bytes]:
        """Records found valid here since the last call."""
        fresh, self._fresh_valid = self._fresh_valid, []
        return fresh

    def valid_digests(self) -> list[bytes]:
        """Every record remembered as valid."""
        merged = {**self._older, **self._newer}
        return [key for key, findings in merged.items() if not findings]

    def clear(self) -> None:
        self._newer, self._older, self._fresh_valid = {}, {}, []


RECORDS = RecordMemory(capacity=65_536)


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


def record_key(
    kind: DocumentKind, profile: Profile, member: str, record: Any
) -> bytes | None:
    """The digest a record's verdict is remembered by (None: not plain JSON)."""
    content = plain_content(record)
    if content is None:
        return None
    prefix = _digest_prefix(kind, profile, member)
    return blake2b(prefix + content, digest_size=DIGEST_SIZE).digest()


def version_key(kind: DocumentKind, profile: Profile, blob: str) -> bytes:
    """The digest a whole version of a document, a git blob, is remembered by."""
    prefix = _digest_prefix(kind, profile, "\0version")
    return blake2b(prefix + blob.encode(), digest_size=DIGEST_SIZE).digest()


@functools.cache
def _digest_prefix(kind: DocumentKind, profile: Profile, member: str) -> bytes:
    return f"{kind.value}/{profile.value}/{member}\0".encode()


def plain_content(value: Any) -> bytes | None:
    """`value`'s content as bytes, fast: equal bytes mean equal values of equal
    types and key order (marshal's version 2 shares no references, so the bytes
    do not depend on how the objects were built). None: not plain JSON data."""
    try:
        return marshal.dumps(value, 2)
    except ValueError:
        return None


def unchanged_records(old: list[Any], new: list[Any]) -> list[int]:
    """Indices of the records of `new` equal, as JSON, to a record of `old`.

    A write usually appends or alters a few records in place, so records are
    first compared where they stand, a run of them at a time; only those that
    moved or changed are looked for among all the old ones.
    """
    unchanged: list[int] = []
    strays: list[int] = []
    for start in range(0, len(new), _RUN):
        stop = min(start + _RUN, len(new))
        if stop <= len(old) and _same_content(old[start:stop], new[start:stop]):
            unchanged += range(start, stop)
            continue
        for index in range(start, stop):
            is_kept = index < len(old) and _same_content(old[index], new[index])
            (unchanged if is_kept else strays).append(index)
    return sorted(unchanged + _found_in(old, new, strays))


_RUN = 256  # records compared at once where they stand


def _found_in(old: list[Any], new: list[Any], indices: list[int]) -> list[int]:
    """Those of `indices` whose record in `new` is also among `old`. Equal records
    have equal ids: a few are looked for among the old ones with that id."""
    if len(indices) <= 8:
        return [
            index
            for index in indices
            if any(_is_same(new[index], o) for o in _with_id(old, _id_of(new[index])))
        ]
    quick = {content for content in map(plain_content, old) if content is not None}
    by_id: dict[Any, list[Any]] | None = None
    found = []
    for index in indices:
        record = new[index]
        content = plain_content(record)
        if content is None or content not in quick:
            by_id = _by_id(old) if by_id is None else by_id
            if not any(_is_same(record, o) for o in by_id.get(_id_of(record), [])):
                continue
        found.append(index)
    return found


def _by_id(records: list[Any]) -> dict[Any, list[Any]]:
    grouped: dict[Any, list[Any]] = {}
    for record in records:
        grouped.setdefault(_id_of(record), []).append(record)
    return grouped


def _with_id(records: list[Any], key: Any) -> list[Any]:
    return [record for record in records if _id_of(record) == key]


def _same_content(value: Any, other: Any) -> bool:
    content = plain_content(value)
    return content is not None and content == plain_content(other)


def _is_same(value: Any, other: Any) -> bool:
    """Equal as JSON: the same content byte for byte, or (keys in another order,
    rare) the same text once keys are sorted."""
    return _same_content(value, other) or _json_text(value) == _json_text(other)


def _id_of(record: Any) -> Any:
    """A hashable stand-in for a record's id; equal JSON records share it."""
    record_id = record.get("id") if isinstance(record, dict) else None
    return record_id if isinstance(record_id, _PLAIN_IDS) else "\0odd"


_PLAIN_IDS = (str, int, float, type(None))


def _json_text(record: Any) -> str:
    return json.dumps(record, sort_keys=True, default=str)


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
