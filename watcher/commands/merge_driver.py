"""`build-watcher merge-driver BASE OURS THEIRS PATH`: git's merge driver.

git calls it with `%O %A %B %P` for the coordination files (`hooks install`
registers it). The merged document replaces OURS; every clash settled by a rule is
reported on standard error. It never writes conflict markers: when a side does not
parse, OURS is left as it is and the exit status 1 tells git the file is in
conflict, for a person to resolve with `build-watcher validate`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from watcher.errors import UsageError, WatcherError

HELP = "merge a coordination file by record id (git)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("base", type=Path, help="the common ancestor's version (%%O)")
    parser.add_argument("ours", type=Path, help="our version, replaced (%%A)")
    parser.add_argument("theirs", type=Path, help="their version (%%B)")
    parser.add_argument("path", help="the file's path in the repository (%%P)")


def run(args: argparse.Namespace) -> int:
    from watcher.documents import dump_document
    from watcher.mergedriver import merge_documents
    from watcher.outbox import write_durably

    sides = [
        _read(args.base, "base (%O)"),
        _read(args.ours, "ours (%A)"),
        _read(args.theirs, "theirs (%B)"),
    ]
    try:
        base = _parse(sides[0], args.path, allow_empty=True)
        ours = _parse(sides[1], args.path)
        theirs = _parse(sides[2], args.path)
    except WatcherError as error:
        print(f"build-watcher merge: {error}; left ours in place", file=sys.stderr)
        return 1
    result = merge_documents(args.path, base, ours, theirs)
    for note in result.notes:
        print(f"build-watcher merge: {note}", file=sys.stderr)
    write_durably(args.ours, dump_document(result.value).decode("utf-8"))
    return 0


def _read(file: Path, side: str) -> bytes:
    """One side's file; git always passes existing ones, a person may not."""
    try:
        return file.read_bytes()
    except OSError as error:
        raise UsageError(
            f"cannot read the {side} file {file}: {error.strerror}",
            hint="git passes the driver existing files (`merge-driver %O %A %B %P`); "
            "by hand, give the base, ours and theirs files, then the path",
        ) from error


def _parse(data: bytes, path: str, allow_empty: bool = False) -> Any:
    from watcher.jsonload import LoadError, load_json

    if allow_empty and not data.strip():
        return None
    try:
        value, _warnings = load_json(data, path)
    except LoadError as error:
        problem = error.problem
        raise WatcherError(f"{path}:{problem.line}: {problem.message}") from error
    return value
