"""Bringing a person's checkout along to the processed tip, on real repositories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from tests.conftest import Fleet, git
from tests.test_transaction import AppendNote
from watcher.config import Config, load_config
from watcher.follower import Follower
from watcher.layout import JOBS_PATH
from watcher.progress import Progress
from watcher.transaction import transact


@pytest.fixture
def logged() -> Iterator[list[tuple[str, str]]]:
    found: list[tuple[str, str]] = []
    handle = logger.add(lambda m: found.append((m.record["level"].name, str(m))))
    yield found
    logger.remove(handle)


def follower_at_tip(config: Config) -> Follower:
    """A follower whose processed tip is the remote's, fetched into the checkout."""
    follower = Follower(lambda: config, Progress(config.node))
    git("fetch", "--quiet", "origin", cwd=config.repo)
    follower.begin()
    return follower


def remote_moves(fleet: Fleet, text: str) -> None:
    writer = fleet.checkouts.get("build9") or fleet.clone("build9")
    assert transact(load_config(str(writer), "build9"), AppendNote(text)).is_done


def head(checkout: Path) -> str:
    return git("rev-parse", "HEAD", cwd=checkout).strip()


def test_a_checkout_is_brought_along_once_a_hand_edit_in_the_way_is_undone(
    fleet: Fleet,
) -> None:
    checkout = fleet.clone("build1")
    config = load_config(str(checkout), "build1")
    remote_moves(fleet, "one")
    (checkout / JOBS_PATH).write_text("edited by hand\n")
    follower = follower_at_tip(config)
    follower.bring_checkout_along()
    assert head(checkout) != follower.snapshot.commit

    git("checkout", "--", JOBS_PATH, cwd=checkout)
    follower.retry_checkout()  # the dispatcher does this on a change of the files
    follower.bring_checkout_along()

    assert head(checkout) == follower.snapshot.commit


def test_a_checkout_ahead_of_the_remote_is_said_to_have_commits_it_lacks(
    fleet: Fleet, logged: list[tuple[str, str]]
) -> None:
    checkout = fleet.clone("build1")
    git("commit", "--quiet", "--allow-empty", "-m", "local", cwd=checkout)
    follower = follower_at_tip(load_config(str(checkout), "build1"))

    follower.bring_checkout_along()

    assert any("commits the remote lacks" in text for _, text in logged)
    assert not any("diverged" in text for _, text in logged)


def test_a_diverged_checkout_is_warned_about_as_diverged(
    fleet: Fleet, logged: list[tuple[str, str]]
) -> None:
    checkout = fleet.clone("build1")
    git("commit", "--quiet", "--allow-empty", "-m", "local", cwd=checkout)
    remote_moves(fleet, "one")
    follower = follower_at_tip(load_config(str(checkout), "build1"))

    follower.bring_checkout_along()

    [(level, _)] = [entry for entry in logged if "diverged" in entry[1]]
    assert level == "WARNING"
    assert not any("commits the remote lacks;" in text for _, text in logged)


def test_a_checkout_on_another_branch_is_not_said_to_be_ahead(
    fleet: Fleet, logged: list[tuple[str, str]]
) -> None:
    checkout = fleet.clone("build1")
    git("checkout", "--quiet", "-b", "topic", cwd=checkout)
    git("commit", "--quiet", "--allow-empty", "-m", "topic work", cwd=checkout)
    follower = follower_at_tip(load_config(str(checkout), "build1"))

    follower.bring_checkout_along()

    assert any("not on main" in text for _, text in logged)
    assert not any("remote lacks" in text for _, text in logged)
