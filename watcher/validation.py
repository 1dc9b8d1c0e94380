"""Validation of coordination documents: strict loading, then the bundled schemas.

Three ways to judge one version of one file:

- `Profile.STRICT`: every departure from the strict schema is an error. This is
  what the product writes and what new content must be.
- `Profile.LEGACY`: only what the legacy profile rejects is an error; each way the
  document departs from strict is a warning. A real repository reads this way.
- `check_change`: what a commit changes. Records it adds or alters must be strict;
  records it leaves as they were are held to legacy, so a team can adopt the hook
  before it migrates. Jobs and messages are matched by `id`, locks by name; other
  documents are judged whole.

Two records with one id cannot be refused by JSON Schema, so that check runs
here, after the schema, and counts as a strict rule (`unique-id`).

Strict validation runs first: a document that passes it passes legacy too, so
the second validation runs only for documents that depart from strict.

Large documents repeat from one version to the next: what a record broke is
remembered by its content, a version found valid by its blob id
(`watcher.recordmemory`), and a change whose `before` is known valid has only the
records it adds or alters validated.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from watcher import findings as found
from watcher import recordmemory as memory
from watcher.findings import Finding, PathParts
from watcher.jsonload import MAX_BYTES, LoadError, load_json
from watcher.jsonpaths import LineIndex, format_path, locate_paths
from watcher.layout import DocumentKind, kind_of
from watcher.problems import Problem, Severity
from watcher.schemas import Profile

__all__ = [
    "DocumentResult",
    "Profile",
    "check_change",
    "check_document",
    "check_value",
    "check_value_change",
    "vouch_for",
]

NO_SCHEMA_RULE = "no-schema"


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

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.is_error]


class _Judgement(NamedTuple):
    """Legacy errors, and the strict departures legacy accepts."""

    legacy_errors: Sequence[Finding] = ()
    departures: Sequence[Finding] = ()


def check_document(
    path: str,
    data: bytes,
    profile: Profile,
    *,
    warnings: bool = True,
    max_bytes: int | None = MAX_BYTES,
    blob: str | None = None,
) -> DocumentResult:
    """Parse then validate one file's bytes.

    `warnings=False` validates a legacy document with the legacy profile alone,
    leaving out the strict pass that finds each departure from strict: the same
    errors, and so the same validity, at half the cost or less. `max_bytes=None`
    lifts the loader's size limit (see `load_json`). `blob`, the git object id of
    `data`: a version found valid before, here or by an earlier command
    (`watcher.verdicts`), is then only parsed; without warnings only, since
    those are not remembered.
    """
    kind = kind_of(path)
    key = memory.version_key(kind, profile, blob) if kind and blob else None
    is_known = key is not None and memory.RECORDS.get(key) == ()
    if is_known and (profile is Profile.STRICT or not warnings):
        return _check(path, data, lambda value: _Verdict(), max_bytes)
    result = _check(
        path,
        data,
        lambda value: _judge_profile(path, value, profile, warnings),
        max_bytes,
    )
    if key is not None and result.is_valid:
        memory.RECORDS.put(key, ())
    return result


def vouch_for(path: str, blob: str) -> None:
    """Remember that version `blob` of `path` passes the legacy profile (one the
    product wrote after checking what it changed)."""
    kind = kind_of(path)
    if kind is not None:
        memory.RECORDS.put(memory.version_key(kind, Profile.LEGACY, blob), ())


def check_value(path: str, value: Any, profile: Profile) -> list[Problem]:
    """Schema problems of an already parsed value (no line numbers)."""
    return _judge_profile(path, value, profile, True).problems(path, None)


def check_change(path: str, data: bytes, before: Any = None) -> DocumentResult:
    """Judge a new version against the one it replaces (`before`; None: a new file).

    Strict departures inside records that are unchanged since `before` are
    warnings; everywhere else they are errors.
    """
    return _check(path, data, lambda value: _judge_change(path, before, value, False))


def check_value_change(
    path: str, value: Any, before: Any = None, *, before_is_valid: bool = False
) -> list[Problem]:
    """`check_change` for a parsed value (no line numbers), as a transaction has.

    `before_is_valid`: `before` is known to pass the legacy profile (a
    transaction's base), so records it already holds unchanged are not validated
    again; only what the change adds or alters is. Their strict departures are
    then not reported as warnings either.
    """
    judged = _judge_change(path, before, value, before_is_valid)
    return judged.problems(path, None)


class _Verdict:
    """Findings sorted into severities, turned into problems once text is known."""

    def __init__(
        self, *groups: tuple[Severity, Sequence[Finding]], notes: Sequence[Problem] = ()
    ) -> None:
        self.groups = groups
        self.notes = notes

    def problems(self, path: str, data: bytes | None) -> list[Problem]:
        wanted = {f.parts for _, group in self.groups for f in group}
        text = data.decode("utf-8") if data is not None and wanted else None
        offsets = locate_paths(text, wanted) if text is not None else {}
        lines = LineIndex(text) if text is not None else None
        problems = list(self.notes)
        for severity, group in self.groups:
            for finding in _in_text_order(group, offsets, severity is Severity.ERROR):
                offset = offsets.get(finding.parts)
                position = (
                    lines.position(offset) if lines and offset is not None else (0, 0)
                )
                problems.append(_problem(path, severity, finding, position))
        return problems


def _in_text_order(
    group: Sequence[Finding], offsets: dict[PathParts, int], keep_first: bool
) -> list[Finding]:
    """Findings by position; the best match of the errors stays first."""
    head = list(group[:1]) if keep_first else []
    rest = sorted(group[len(head) :], key=lambda f: offsets.get(f.parts, 1 << 62))
    return head + rest


def _check(
    path: str,
    data: bytes,
    judge: Callable[[Any], _Verdict],
    max_bytes: int | None = MAX_BYTES,
) -> DocumentResult:
    result = DocumentResult(path, kind_of(path))
    try:
        result.value, warnings = load_json(data, path, max_bytes=max_bytes)
    except LoadError as error:
        result.problems.append(error.problem)
        return result
    result.problems.extend(warnings)
    result.problems.extend(judge(result.value).problems(path, data))
    return result


def _judge_profile(path: str, value: Any, profile: Profile, warnings: bool) -> _Verdict:
    kind = kind_of(path)
    if kind is None:
        return _Verdict(notes=[no_schema_problem(path)])
    if profile is Profile.STRICT:
        return _Verdict((Severity.ERROR, _strict_findings(kind, value)))
    if not warnings:
        legacy = found.document_findings(kind, Profile.LEGACY, value)
        return _Verdict((Severity.ERROR, legacy))
    judgement = _judge(kind, value)
    return _Verdict(
        (Severity.ERROR, judgement.legacy_errors),
        (Severity.WARNING, judgement.departures),
    )


def _judge_change(
    path: str, before: Any, value: Any, before_is_valid: bool
) -> _Verdict:
    kind = kind_of(path)
    if kind is None:
        return _Verdict(notes=[no_schema_problem(path)])
    untouched = set(_untouched_regions(kind, before, value))
    skip = _record_indices(untouched) if before_is_valid else set()
    judgement = _judge(kind, value, skip)
    kept: list[Finding] = []
    changed: list[Finding] = []
    for finding in judgement.departures:
        (kept if _is_untouched(finding, untouched) else changed).append(finding)
    return _Verdict(
        (Severity.ERROR, [*judgement.legacy_errors, *changed]),
        (Severity.WARNING, kept),
    )


def _strict_findings(
    kind: DocumentKind, value: Any, skip: Collection[int] = ()
) -> list[Finding]:
    strict = found.document_findings(kind, Profile.STRICT, value, skip)
    return [*strict, *found.duplicate_ids(kind, value)]


def _judge(kind: DocumentKind, value: Any, skip: Collection[int] = ()) -> _Judgement:
    """`skip`: indices of records known to pass legacy, left out of both passes."""
    strict = _strict_findings(kind, value, skip)
    if not strict:
        return _Judgement()
    legacy = found.document_findings(kind, Profile.LEGACY, value, skip)
    departures = [f for f in strict if not found.covered(f, legacy)]
    return _Judgement(legacy, departures)


def _record_indices(regions: Collection[PathParts]) -> set[int]:
    """The records (by index in their list) among untouched regions."""
    return {r[1] for r in regions if len(r) == 2 and isinstance(r[1], int)}


def _is_untouched(finding: Finding, regions: Collection[PathParts]) -> bool:
    """Every place the finding involves lies within an untouched region."""
    places = (finding.parts, *finding.related)
    return all(
        any(place[:length] in regions for length in range(len(place) + 1))
        for place in places
    )


def _untouched_regions(kind: DocumentKind, before: Any, after: Any) -> list[PathParts]:
    """JSON paths of the parts of `after` that are as they were in `before`."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    container = "locks" if kind is DocumentKind.LOCKS else found.RECORD_LISTS.get(kind)
    if container is None:
        return []
    regions = _unchanged_members(before, after, None, skip=container)
    if kind is DocumentKind.LOCKS:
        return regions + _unchanged_members(before, after, container)
    old = before.get(container)
    new = after.get(container)
    if isinstance(old, list) and isinstance(new, list):
        regions += [(container, i) for i in memory.unchanged_records(old, new)]
    return regions


def _unchanged_members(
    before: dict[str, Any], after: dict[str, Any], member: str | None, skip: str = ""
) -> list[PathParts]:
    """Members of `after` (or of its `member` object) equal to those in `before`."""
    old = before.get(member) if member else before
    new = after.get(member) if member else after
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    prefix: PathParts = (member,) if member else ()
    return [
        (*prefix, key)
        for key, value in new.items()
        if key != skip and key in old and old[key] == value
    ]


def _problem(
    path: str, severity: Severity, finding: Finding, position: tuple[int, int]
) -> Problem:
    line, column = position
    hint = finding.hint
    if severity is Severity.WARNING and finding.rule != "unique-id":
        hint = found.MIGRATE_HINT
    return Problem(
        path,
        finding.message,
        severity=severity,
        line=line,
        column=column,
        json_path=format_path(finding.parts),
        rule=finding.rule,
        hint=hint,
    )


def no_schema_problem(path: str) -> Problem:
    """A JSON file in the coordination tree that no bundled schema covers."""
    return Problem(
        path,
        "no schema covers this file: it was parsed but not validated",
        severity=Severity.INFO,
        rule=NO_SCHEMA_RULE,
    )
