"""Strict loading: every fault has its own rule, message, line and column."""

from __future__ import annotations

import pytest

from watcher.jsonload import MAX_BYTES, LoadError, load_json
from watcher.problems import Severity

PATH = "coordination/jobs.json"


def refused(data: bytes) -> tuple[str, int, int, str, str]:
    with pytest.raises(LoadError) as caught:
        load_json(data, PATH)
    problem = caught.value.problem
    assert problem.path == PATH
    assert problem.hint, "every fault says how to fix it"
    return (
        problem.rule,
        problem.line,
        problem.column,
        problem.json_path,
        problem.message,
    )


def test_loads_a_valid_document_without_warnings() -> None:
    value, warnings = load_json(b'{"jobs": [{"id": "j1", "priority": 1.5}]}\n', PATH)
    assert value == {"jobs": [{"id": "j1", "priority": 1.5}]}
    assert warnings == []


def test_empty_file_is_refused_at_its_start() -> None:
    rule, line, column, _, message = refused(b"")
    assert (rule, line, column) == ("empty", 1, 1)
    assert message == "file is empty"


def test_whitespace_only_file_counts_as_empty() -> None:
    rule, _, _, _, message = refused(b"  \n\n")
    assert rule == "empty"
    assert "only whitespace" in message


def test_bytes_that_are_not_utf8_are_located() -> None:
    rule, line, column, _, message = refused(b'{\n  "name": "caf\xe9"\n}\n')
    assert (rule, line, column) == ("encoding", 2, 15)
    assert "0xe9 is not valid UTF-8" in message


def test_utf16_file_is_named_as_such() -> None:
    rule, line, column, _, message = refused('{"a": 1}'.encode("utf-16"))
    assert (rule, line, column) == ("encoding", 1, 1)
    assert "UTF-16" in message


def test_byte_order_mark_is_refused() -> None:
    rule, line, column, _, message = refused(b'\xef\xbb\xbf{"jobs": []}')
    assert (rule, line, column) == ("byte-order-mark", 1, 1)
    assert "byte-order mark" in message


def test_conflict_markers_name_the_first_marker_line() -> None:
    data = (
        b'{\n  "messages": [\n<<<<<<< HEAD\n    {"id": "a"}\n=======\n'
        b'    {"id": "b"}\n>>>>>>> origin/main\n  ]\n}\n'
    )
    with pytest.raises(LoadError) as caught:
        load_json(data, PATH)
    problem = caught.value.problem
    assert (problem.rule, problem.line, problem.column) == ("conflict-marker", 3, 1)
    assert "line 3" in problem.message and "<<<<<<< HEAD" in problem.message
    assert "both sides" in problem.hint and "merge-driver" in problem.hint


def test_duplicate_key_is_reported_at_its_second_occurrence() -> None:
    data = (
        b'{\n  "jobs": [\n    {"id": "a", "status": "queued", "status": "running"}\n'
        b"  ]\n}"
    )
    rule, line, column, json_path, message = refused(data)
    assert (rule, line, column) == ("duplicate-key", 3, 37)
    assert json_path == "$.jobs[0].status"
    assert 'duplicate key "status"' in message


@pytest.mark.parametrize(
    ("text", "column", "shown"),
    [(b'{"a": [1, NaN]}', 11, "NaN"), (b'{"a": -Infinity}', 7, "-Infinity")],
)
def test_nan_and_infinity_are_refused(text: bytes, column: int, shown: str) -> None:
    rule, line, found_column, _, message = refused(text)
    assert (rule, line, found_column) == ("non-finite-number", 1, column)
    assert f"`{shown}`" in message


def test_a_number_too_large_for_a_float_counts_as_infinite() -> None:
    rule, _, column, _, _ = refused(b'{"a": 1e400}')
    assert (rule, column) == ("non-finite-number", 7)


def test_integers_beyond_two_to_the_53_are_refused() -> None:
    rule, line, column, json_path, message = refused(b'{\n  "n": 9007199254740993\n}')
    assert (rule, line, column, json_path) == ("large-integer", 2, 8, "$.n")
    assert "2^53" in message


def test_largest_safe_integer_is_accepted() -> None:
    value, _ = load_json(b'{"n": 9007199254740991, "m": -9007199254740991}', PATH)
    assert value == {"n": 2**53 - 1, "m": -(2**53 - 1)}


def test_nesting_deeper_than_64_is_refused_at_the_65th_level() -> None:
    rule, line, column, _, message = refused(b"[" * 65 + b"]" * 65)
    assert (rule, line, column) == ("too-deep", 1, 65)
    assert "64" in message


def test_nesting_of_64_levels_is_accepted() -> None:
    load_json(b"[" * 64 + b"]" * 64, PATH)


def test_nesting_too_deep_for_the_parser_is_still_reported() -> None:
    rule, _, column, _, _ = refused(b"[" * 100_000 + b"]" * 100_000)
    assert (rule, column) == ("too-deep", 65)


def test_file_over_8_mib_is_refused_before_parsing() -> None:
    rule, line, column, _, message = refused(b" " * (MAX_BYTES + 1))
    assert (rule, line, column) == ("too-large", 1, 1)
    assert "8 MiB" in message


def test_trailing_comma_points_at_the_comma() -> None:
    rule, line, column, _, message = refused(b'{\n  "jobs": [],\n}\n')
    assert (rule, line, column) == ("trailing-comma", 2, 13)
    assert "trailing comma before `}`" in message


def test_trailing_comma_in_an_array() -> None:
    rule, line, column, _, _ = refused(b'{"jobs": [1, 2, ]}')
    assert (rule, line, column) == ("trailing-comma", 1, 15)


def test_unquoted_string_is_located_at_its_start() -> None:
    rule, line, column, _, message = refused(
        b'{\n  "at": 2025-10-29T15:58:06Z,\n  "n": 1\n}'
    )
    assert (rule, line, column) == ("syntax", 2, 9)
    assert message == "unquoted string `2025-10-29T15:58:06Z`: JSON needs double quotes"


def test_other_syntax_errors_say_what_was_expected() -> None:
    rule, line, column, _, message = refused(b'{"a": 1 "b": 2}')
    assert (rule, line, column) == ("syntax", 1, 9)
    assert message == "expected `,` between two items"


def test_comments_are_named() -> None:
    rule, line, column, _, message = refused(b'{\n  // note\n  "a": 1\n}')
    assert (rule, line, column) == ("syntax", 2, 3)
    assert "comments" in message


def test_crlf_line_ends_are_a_warning_not_a_fault() -> None:
    value, warnings = load_json(b'{\r\n  "jobs": []\r\n}\r\n', PATH)
    assert value == {"jobs": []}
    [warning] = warnings
    assert (warning.rule, warning.severity) == ("line-ends", Severity.WARNING)
    assert (warning.line, warning.column) == (1, 2)
    assert "3 line(s)" in warning.message
