"""`build-watcher migrate`: rewrite a legacy repository in the strict format."""

from __future__ import annotations

import argparse
import json

from watcher.config import load_config

HELP = "rewrite a legacy repository in the strict format"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would change; write nothing"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from watcher.documents import latest_snapshot, refresh_tip
    from watcher.migration import MigrateRepository, Migration, migrate_documents
    from watcher.timestamps import now_utc
    from watcher.transaction import OutcomeStatus, transact

    config = load_config(args.repo, args.node, args.config)
    if args.dry_run:
        failure = refresh_tip(config)
        if failure:
            print(
                f"note: the remote could not be reached ({failure}); "
                "showing the tip fetched last"
            )
        snapshot = latest_snapshot(config)
        migration = migrate_documents(snapshot.documents, now_utc())
        _print(migration, args.format, "would change")
        return 0
    config.require_node()
    outcome = transact(config, MigrateRepository(), offline_ok=False)
    if outcome.status is OutcomeStatus.FAILED:
        print(f"migration failed: {outcome.reason}")
        return 1
    migration = outcome.result if isinstance(outcome.result, Migration) else Migration()
    _print(migration, args.format, "changed" if outcome.is_done else "nothing to do:")
    return 0


def _print(migration: object, output: str, verb: str) -> None:
    from watcher.migration import Migration

    assert isinstance(migration, Migration)
    if output == "json":
        print(json.dumps({"changes": migration.changes}, indent=2))
        return
    files = len(migration.changes)
    print(f"{verb} {migration.change_count} value(s) in {files} document(s)")
    for path, notes in sorted(migration.changes.items()):
        print(f"{path}:")
        for note in notes:
            print(f"  {note}")
