"""Record ids that are unique without coordination: time-ordered and random.

An id is a prefix, an underscore and a ULID: 48 bits of milliseconds since the epoch
then 80 random bits, in Crockford base32 (26 characters). Ids sort by creation time,
and two servers creating ids at the same moment collide with negligible probability,
so no counter (and no read of the repository) is needed. Within one process, ids
made in the same millisecond still sort in creation order (the random part is
incremented, as the ULID specification describes).
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from datetime import UTC, datetime

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_LENGTH = 26
_RANDOM_BITS = 80
_PREFIX = re.compile(r"^[a-z][a-z0-9]{0,15}$")
_ULID = re.compile(rf"^[{ALPHABET}]{{{ULID_LENGTH}}}$")


class _UlidClock:
    """The last (millisecond, random) pair handed out, so ids in one ms keep order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.millisecond = -1
        self.random = 0

    def next_value(self) -> int:
        with self.lock:
            now = time.time_ns() // 1_000_000
            if now <= self.millisecond and self.random + 1 < 2**_RANDOM_BITS:
                self.random += 1
            else:
                self.millisecond = max(now, self.millisecond)
                self.random = secrets.randbits(_RANDOM_BITS)
            return (self.millisecond << _RANDOM_BITS) | self.random


_CLOCK = _UlidClock()


def encode_ulid(value: int) -> str:
    """A 128-bit value as 26 Crockford base32 characters, most significant first."""
    characters = []
    for _ in range(ULID_LENGTH):
        characters.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(characters))


def new_ulid() -> str:
    return encode_ulid(_CLOCK.next_value())


def new_id(prefix: str) -> str:
    """A fresh id such as `job_01JD3F...`; `prefix` is a short lowercase word."""
    if not _PREFIX.match(prefix):
        raise ValueError(f"id prefix {prefix!r} must be a short lowercase word")
    return f"{prefix}_{new_ulid()}"


def is_generated_id(value: str, prefix: str | None = None) -> bool:
    """Whether `value` is an id this module makes (with `prefix`, when given)."""
    head, _, tail = value.rpartition("_")
    if prefix is not None and head != prefix:
        return False
    return bool(_PREFIX.match(head)) and bool(_ULID.match(tail))


def id_time(value: str) -> datetime | None:
    """When an id made here was created (millisecond precision), else None."""
    if not is_generated_id(value):
        return None
    number = 0
    for character in value.rpartition("_")[2]:
        number = number * 32 + ALPHABET.index(character)
    return datetime.fromtimestamp((number >> _RANDOM_BITS) / 1000, tz=UTC)
