"""Records known by their content: what each distinct record broke, and which
records of one version of a document are in another.

Records repeat from one version of a document to the next (a message store gains
one message, a claim changes one job), so what validating a record found is
remembered by a digest of its content, and a change is judged by the records it
adds or alters. Content is compared as marshal writes it: equal bytes mean equal
values of equal types, which Python's `==` does not (`True == 1`).
"""

from __future__ import annotations

import functools
import json
import marshal
from _blake2 import blake2b  # hashlib.blake2b, without hashlib loading OpenSSL
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from watcher.layout import DocumentKind
from watcher.schemas import Profile

if TYPE_CHECKING:  # findings imports this module
    from watcher.findings import Finding

DIGEST_SIZE = 16  # bytes of a record's digest: collisions are out of reach


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
        self._is_kept_elsewhere = False  # since `seed_valid`: new verdicts are noted

    def get(self, key: bytes) -> tuple[Finding, ...] | None:
        found = self._newer.get(key)
        if found is None:
            found = self._older.get(key)
            if found is not None:
                self._keep(key, found)
        return found

    def put(self, key: bytes, findings: tuple[Finding, ...]) -> None:
        is_noted = self._is_kept_elsewhere and len(self._fresh_valid) < self.capacity
        if is_noted and not findings:
            self._fresh_valid.append(key)
        self._keep(key, findings)

    def _keep(self, key: bytes, findings: tuple[Finding, ...]) -> None:
        self._newer[key] = findings
        if len(self._newer) >= self.capacity:
            self._older, self._newer = self._newer, {}

    def seed_valid(self, keys: Iterable[bytes]) -> None:
        """Records known, from elsewhere, to break nothing; from now on, those found
        valid here are noted for `take_fresh_valid`."""
        self._is_kept_elsewhere = True
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
        self._is_kept_elsewhere = False


RECORDS = RecordMemory(capacity=65_536)


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
