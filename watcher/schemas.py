"""The bundled JSON Schemas and the validators built from them.

One schema file per document kind (`DocumentKind.schema_file`), in JSON Schema
2020-12, shipped in the package `watcher.schema_files`. Each file states the
**strict** profile: what the product writes and what new content must be. The
**legacy** profile is derived from the same file by one transformation: wherever
a subschema carries the keyword `x-legacy`, the legacy profile uses the value of
`x-legacy` in its place. Every `x-legacy` replacement accepts at least what the
strict subschema accepts, so whatever is strict is also legacy. Other tools (such
as check-jsonschema) ignore the unknown keyword and so validate the strict form.

`x-messages` maps a keyword of a subschema to the message shown when it fails,
where the generated one would not say what to do.

Before a validator is built, every `$ref` (within a file, `#/$defs/NAME`, or to
another bundled file, `FILE#/$defs/NAME`) is replaced by the subschema it names:
jsonschema resolves a reference on every use, which doubled the time to validate
a dashboard with a hundred history entries. The bundled schemas are not
recursive, so the expansion is finite; a cycle is refused when it is built.

Formats are checked for real: validators get a format checker that knows exactly
one format, `date-time`, as the strict profile means it (RFC 3339 in UTC with `Z`),
rather than jsonschema's default, which passes everything when its optional
helper package is missing.

jsonschema costs tens of milliseconds to import, so it is imported only when the
first validator is built; importing this module stays cheap.
"""

from __future__ import annotations

import enum
import functools
import json
import re
from datetime import datetime
from importlib import resources
from typing import Any

from watcher.layout import DocumentKind

# jsonschema ships no type information, so its objects are typed `Any` here.
Validator = Any
FormatChecker = Any
SCHEMA_PACKAGE = "watcher.schema_files"
LEGACY_KEYWORD = "x-legacy"
MESSAGES_KEYWORD = "x-messages"

_DATE_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?Z"
)


class Profile(enum.Enum):
    STRICT = "strict"
    LEGACY = "legacy"


def is_utc_timestamp(value: object) -> bool:
    """RFC 3339 in UTC with `Z` and a real date; formats judge strings only."""
    if not isinstance(value, str):
        return True
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = map(int, match.groups())
    try:
        datetime(year, month, day, hour, minute, second)
    except ValueError:
        return False
    return True


@functools.cache
def schema_document(kind: DocumentKind) -> dict[str, Any]:
    """The bundled schema of `kind`, as written (the strict profile)."""
    source = resources.files(SCHEMA_PACKAGE).joinpath(kind.schema_file)
    document: dict[str, Any] = json.loads(source.read_text(encoding="utf-8"))
    return document


def legacy_form(schema: Any) -> Any:
    """The legacy profile of a schema: every `x-legacy` value replaces its subschema."""
    if isinstance(schema, dict):
        if LEGACY_KEYWORD in schema:
            return legacy_form(schema[LEGACY_KEYWORD])
        return {key: legacy_form(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [legacy_form(item) for item in schema]
    return schema


@functools.cache
def profile_schema(kind: DocumentKind, profile: Profile) -> dict[str, Any]:
    """The schema of `kind` in one profile, as a file other tools could read."""
    document = schema_document(kind)
    if profile is Profile.STRICT:
        return document
    legacy: dict[str, Any] = legacy_form(document)
    return legacy


def expanded_schema(kind: DocumentKind, profile: Profile) -> dict[str, Any]:
    """The profile's schema with every `$ref` replaced by what it names."""
    document = profile_schema(kind, profile)
    expanded: dict[str, Any] = _expand(document, kind.schema_file, profile, ())
    return expanded


def _expand(node: Any, file: str, profile: Profile, trail: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_expand(item, file, profile, trail) for item in node]
    if not isinstance(node, dict):
        return node
    reference = node.get("$ref")
    if reference is None:
        return {
            key: _expand(value, file, profile, trail) for key, value in node.items()
        }
    target_file, _, pointer = reference.partition("#")
    target_file = target_file or file
    if f"{target_file}#{pointer}" in trail:
        raise ValueError(f"recursive $ref in bundled schema {file}: {reference}")
    target = _lookup(target_file, pointer, profile)
    trail = (*trail, f"{target_file}#{pointer}")
    expanded = _expand(target, target_file, profile, trail)
    siblings = {key: value for key, value in node.items() if key != "$ref"}
    if not siblings:
        return expanded
    # Keywords beside a `$ref` apply together with it, as in an `allOf`.
    return {"allOf": [expanded], **_expand(siblings, file, profile, trail)}


def _lookup(file: str, pointer: str, profile: Profile) -> dict[str, Any] | bool:
    kind = DocumentKind(file.removesuffix(".schema.json"))
    node: Any = profile_schema(kind, profile)
    for part in filter(None, pointer.split("/")):
        node = node[part]
    if not isinstance(node, dict | bool):
        raise ValueError(f"bundled schema {file}: $ref #{pointer} is not a subschema")
    return node


@functools.cache
def validator(kind: DocumentKind, profile: Profile) -> Validator:
    """A validator for one kind and profile, built once per process."""
    return _build(expanded_schema(kind, profile))


@functools.cache
def split_validators(
    kind: DocumentKind, profile: Profile, member: str
) -> tuple[Validator, Validator] | None:
    """For a document whose `member` lists records: one validator for the document
    without its records, one for a single record (None if the schema has no such
    list). Records repeat from one version to the next, so they are worth
    validating apart and remembering."""
    schema = expanded_schema(kind, profile)
    listed = schema.get("properties", {}).get(member)
    if not isinstance(listed, dict) or "items" not in listed:
        return None
    without_items = {key: value for key, value in listed.items() if key != "items"}
    shell = {**schema, "properties": {**schema["properties"], member: without_items}}
    return _build(shell), _build(listed["items"])


def _build(schema: Any) -> Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema, format_checker=format_checker())


@functools.cache
def format_checker() -> FormatChecker:
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=())
    checker.checks("date-time")(is_utc_timestamp)
    return checker
