"""Reading the shared documents: the tip refreshed the way every fetch is."""

from __future__ import annotations

import dataclasses
import threading

from tests.conftest import Fleet, git
from tests.test_transaction import AppendNote
from watcher import remoterefs
from watcher.config import load_config
from watcher.documents import refresh_tip
from watcher.transaction import transact


def test_refreshing_the_tip_waits_for_the_ref_lock_then_fetches(fleet: Fleet) -> None:
    checkout = fleet.clone("build1")
    config = load_config(str(checkout), "build1")
    writer = load_config(str(fleet.clone("build2")), "build2")
    pushed = transact(writer, AppendNote("one")).commit
    results: list[str | None] = []
    fetching = threading.Thread(target=lambda: results.append(refresh_tip(config)))

    with remoterefs.ref_lock(checkout):
        fetching.start()
        fetching.join(timeout=1.0)
        assert fetching.is_alive(), "the fetch did not wait for the ref lock"
    fetching.join(timeout=30)

    assert results == [None]
    assert git("rev-parse", config.tracking_ref, cwd=checkout).strip() == pushed


def test_refreshing_the_tip_from_a_missing_remote_returns_gits_reason(
    fleet: Fleet,
) -> None:
    checkout = fleet.clone("build1")
    config = dataclasses.replace(
        load_config(str(checkout), "build1"), remote=str(fleet.root / "gone.git")
    )

    reason = refresh_tip(config)

    assert reason is not None and "gone.git" in reason
