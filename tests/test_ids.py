"""Record ids: time-ordered, random, never from a counter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from watcher.ids import id_time, is_generated_id, new_id


def test_ids_carry_their_prefix_and_a_26_character_ulid() -> None:
    job_id = new_id("job")

    assert job_id.startswith("job_") and len(job_id) == 30
    assert is_generated_id(job_id, "job") and not is_generated_id(job_id, "msg")


def test_ids_sort_in_the_order_they_were_made_even_within_a_millisecond() -> None:
    made = [new_id("msg") for _ in range(2000)]

    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_an_id_tells_when_it_was_made() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)

    moment = id_time(new_id("job"))

    assert moment is not None
    assert before <= moment <= datetime.now(UTC) + timedelta(milliseconds=1)


def test_legacy_counter_ids_are_not_taken_for_generated_ones() -> None:
    assert not is_generated_id("job_1761781030")
    assert id_time("job_1761781030") is None


def test_a_prefix_must_be_a_short_lowercase_word() -> None:
    with pytest.raises(ValueError, match="prefix"):
        new_id("Job-")
