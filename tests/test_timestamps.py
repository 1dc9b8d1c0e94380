from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.timestamps import (
    format_timestamp,
    is_strict_timestamp,
    now_utc,
    parse_timestamp,
)

MOMENT = datetime(2025, 11, 4, 20, 45, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2025-11-04T20:45:12Z",
        "2025-11-04t20:45:12z",
        "2025-11-04T20:45:12+00:00",
        "2025-11-04T22:45:12+02:00",
        "2025-11-04T22:45:12+0200",
        "2025-11-04T15:15:12-05:30",
        "2025-11-04T20:45:12 UTC",
        "2025-11-04 20:45:12",
        "20251104T204512Z",
        "20251104T204512",
        "  2025-11-04T20:45:12Z\n",
        1762289112,
        1762289112.0,
        "1762289112",
        1762289112000,
        "1762289112000",
    ],
)
def test_every_corpus_shape_names_the_same_instant(text: object) -> None:
    assert parse_timestamp(text) == MOMENT


@pytest.mark.parametrize("digits", ["1", "12", "123", "1234567", "123456789"])
def test_fractional_seconds_of_any_width_are_kept_to_the_microsecond(
    digits: str,
) -> None:
    parsed = parse_timestamp(f"2025-11-04T20:45:12.{digits}Z")

    assert parsed is not None
    assert parsed.microsecond == int(digits[:6].ljust(6, "0"))


def test_a_time_without_seconds_or_zone_is_taken_as_utc() -> None:
    assert parse_timestamp("2025-11-04 20:45") == MOMENT.replace(second=0)


def test_a_bare_date_is_midnight_utc() -> None:
    assert parse_timestamp("2025-11-04") == datetime(2025, 11, 4, tzinfo=UTC)


def test_epoch_units_are_told_apart_by_magnitude() -> None:
    seconds = 1762289112
    for scale in (1, 1000, 1_000_000, 1_000_000_000):
        assert parse_timestamp(seconds * scale) == MOMENT


def test_a_leap_second_is_the_instant_after_the_last_second() -> None:
    parsed = parse_timestamp("2016-12-31T23:59:60Z")

    assert parsed == datetime(2017, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
        "",
        "   ",
        "yesterday",
        "2025-13-01T00:00:00Z",
        "2025-02-30T00:00:00Z",
        "2025-11-04T25:00:00Z",
        "2025-11-04T20:45:61Z",
        "2025-11-04T20:45:12+24:00",
        True,
        None,
        float("nan"),
        float("inf"),
        1e300,
        [],
        {},
    ],
)
def test_anything_else_is_none(value: object) -> None:
    assert parse_timestamp(value) is None


def test_format_writes_whole_seconds_in_utc_with_z() -> None:
    moment = datetime(
        2025, 11, 4, 22, 45, 12, 999999, tzinfo=timezone(timedelta(hours=2))
    )

    assert format_timestamp(moment) == "2025-11-04T20:45:12Z"


def test_format_takes_a_naive_time_as_utc() -> None:
    assert format_timestamp(datetime(2025, 11, 4, 20, 45, 12)) == "2025-11-04T20:45:12Z"


def test_now_is_aware_utc() -> None:
    assert now_utc().utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-11-04T20:45:12Z", True),
        ("2025-11-04T20:45:12.127624Z", True),
        ("2025-11-04 20:45", False),
        ("2025-11-04T20:45:12+00:00", False),
        ("20251104T204512Z", False),
        ("2025-02-30T00:00:00Z", False),
        (1762289112, False),
    ],
)
def test_strict_means_rfc3339_utc_with_z(value: object, expected: bool) -> None:
    assert is_strict_timestamp(value) is expected


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9999, 1, 1)))
def test_what_is_written_reads_back_to_the_same_second(moment: datetime) -> None:
    written = format_timestamp(moment)

    assert is_strict_timestamp(written)
    assert parse_timestamp(written) == moment.replace(microsecond=0, tzinfo=UTC)
