"""Hand edits in a real checkout, judged as they are saved."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loguru import logger

from tests.conftest import Fleet, git
from watcher.edits import EditChecker
from watcher.layout import MESSAGES_PATH


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    found: list[str] = []
    handle = logger.add(lambda m: found.append(m.record["message"]), level="WARNING")
    yield found
    logger.remove(handle)


def break_and_report(checker: EditChecker, broken: bytes) -> None:
    path = checker.repo / MESSAGES_PATH
    path.write_bytes(broken)
    checker.saved([MESSAGES_PATH])
    checker.recheck_after = 0.0
    checker.recheck_due()


def test_the_same_breakage_made_again_after_an_undo_is_reported_again(
    fleet: Fleet, warnings: list[str]
) -> None:
    checkout = fleet.clone("build1")
    checker = EditChecker(checkout, recheck_after=0.0)
    original = (checkout / MESSAGES_PATH).read_bytes()
    broken = original[: len(original) // 2]

    break_and_report(checker, broken)
    git("checkout", "--", MESSAGES_PATH, cwd=checkout)
    checker.saved([MESSAGES_PATH])
    break_and_report(checker, broken)

    reported = [w for w in warnings if "edited in the checkout, not committed" in w]
    assert len(reported) == 2
