"""Timestamps: read in every shape a real repository holds, written in one.

The product writes only `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC, whole seconds).
It reads, through `parse_timestamp`:

- RFC 3339 / ISO 8601 with `Z`, `z`, ` UTC` or an offset (`+02:00`, `+0200`),
  with fractional seconds of any width (beyond microseconds they are truncated);
- `YYYY-MM-DD HH:MM[:SS]` or `YYYY-MM-DDTHH:MM[:SS]` with no zone, taken as UTC:
  the scripts that wrote them ran `date -u`, and no other zone can be recovered;
- a bare date `YYYY-MM-DD`, taken as midnight UTC;
- compact `YYYYMMDDTHHMMSS[.f][Z|offset]`;
- epoch time as a number or a string of digits, in seconds, milliseconds,
  microseconds or nanoseconds, told apart by magnitude (seconds below 1e11,
  which is the year 5138; milliseconds below 1e14; and so on).

Anything else (an unexpanded `$(date ...)`, an empty string, a boolean) is None:
the caller decides whether a missing time is a problem.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone

_EXTENDED = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"(?:[Tt ](?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d+))?)?)?"
    r"\s*(?P<zone>[Zz]|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?"
)
_COMPACT = re.compile(
    r"(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})"
    r"[Tt](?P<hour>\d{2})(?P<minute>\d{2})(?P<second>\d{2})"
    r"(?:[.,](?P<fraction>\d+))?"
    r"(?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)
_EPOCH = re.compile(r"[+-]?\d+(?:\.\d+)?")
_STRICT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z")
_EPOCH_UNITS = ((1e11, 1.0), (1e14, 1e3), (1e17, 1e6), (math.inf, 1e9))
_UTC_NAMES = frozenset({"Z", "z", "UTC", "GMT"})


def now_utc() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """The one written form: `YYYY-MM-DDTHH:MM:SSZ`; a naive time is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_strict_timestamp(value: object) -> bool:
    """True for RFC 3339 in UTC with `Z` (fractional seconds allowed), a real date."""
    if not isinstance(value, str) or not _STRICT.fullmatch(value):
        return False
    return parse_timestamp(value) is not None


def parse_timestamp(value: object) -> datetime | None:
    """An aware UTC datetime for any timestamp shape described above, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _EPOCH.fullmatch(text):
        return _from_epoch(float(text))
    match = _EXTENDED.fullmatch(text) or _COMPACT.fullmatch(text)
    return _from_match(match) if match else None


def _from_epoch(seconds: float) -> datetime | None:
    if not math.isfinite(seconds):
        return None
    for limit, divisor in _EPOCH_UNITS:
        if abs(seconds) < limit:
            seconds /= divisor
            break
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _from_match(match: re.Match[str]) -> datetime | None:
    fields = match.groupdict()
    second = int(fields["second"] or 0)
    fraction = (fields["fraction"] or "")[:6].ljust(6, "0")
    if second > 60:
        return None
    try:
        zone = _zone(fields["zone"])
        moment = datetime(
            int(fields["year"]),
            int(fields["month"]),
            int(fields["day"]),
            int(fields["hour"] or 0),
            int(fields["minute"] or 0),
            min(second, 59),
            int(fraction),
            tzinfo=zone,
        )
    except ValueError:
        return None
    # A leap second (:60) is kept as the instant after :59, which is where it ends.
    if second == 60:
        moment += timedelta(seconds=1)
    return moment.astimezone(UTC)


def _zone(text: str | None) -> timezone:
    if text is None or text in _UTC_NAMES:
        return UTC
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"offset out of range: {text}")
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if text[0] == "-" else offset)
