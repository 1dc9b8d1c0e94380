"""`build-watcher validate`: check coordination files against the bundled schemas."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from watcher.errors import EXIT_FAILURE, EXIT_OK, UsageError

if TYPE_CHECKING:
    from watcher.inspection import CheckedFile
    from watcher.validation import Profile

HELP = "validate coordination files"
DESCRIPTION = """\
Check coordination files: strict JSON loading (line and column for every fault),
then the bundled JSON Schemas.

Sources: PATH arguments (files, or directories for the JSON files below them) and
--all (every coordination file in the working tree; the default when nothing else
is given) are read from disk and judged whole, in the strict profile unless
--profile says otherwise.

--staged (the index: the files the next commit changes; with --all, every
coordination file in it) and --range A..B (every version the commits in the range
introduced: the check for CI or a server-side hook, since a local hook can be
skipped) are judged as the pre-commit hook judges a commit: records it adds or
alters must be strict, records it leaves as they were are held to legacy. An
explicit --profile judges whole documents instead.

Profiles: strict is what build-watcher writes (RFC 3339 UTC timestamps with Z,
`server` rather than `server_id`, closed enumerations, unique ids); legacy accepts
what real repositories hold and warns about each departure from strict.

Exit status: 0 when every file is valid, 1 when any is invalid, 2 on a usage error.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or directories")
    parser.add_argument(
        "--all", action="store_true", help="every coordination file in the tree"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--staged", action="store_true", help="check the index")
    source.add_argument("--range", metavar="A..B", help="check the commits in A..B")
    parser.add_argument(
        "--profile",
        choices=("strict", "legacy"),
        help="judge whole documents in this profile (see above for the defaults)",
    )
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format"
    )
    parser.add_argument(
        "--max-problems",
        type=int,
        default=10,
        metavar="N",
        help="problems shown per file in text output (default 10; JSON has all)",
    )


def run(args: argparse.Namespace) -> int:
    from watcher.report import render_json, render_text
    from watcher.validation import Profile

    _check_arguments(args)
    profile = Profile(args.profile) if args.profile else None
    checked = _collect(args, _repository(args), profile)
    if args.format == "json":
        judged = args.profile or ("changes" if args.staged or args.range else "strict")
        print(render_json(checked, judged))
    else:
        text = render_text(checked, limit=args.max_problems, quiet=args.quiet)
        if text:
            print(text)
    return EXIT_OK if all(file.is_valid for file in checked) else EXIT_FAILURE


def _check_arguments(args: argparse.Namespace) -> None:
    if (args.staged or args.range) and args.paths:
        raise UsageError(
            "PATH arguments name files in the working tree; they do not combine "
            "with --staged or --range",
            hint="run `build-watcher validate --staged` alone, or name files only",
        )
    if args.range and args.all:
        raise UsageError("--range checks what each commit changed; drop --all")
    if args.max_problems < 1:
        raise UsageError("--max-problems must be at least 1")


def _repository(args: argparse.Namespace) -> Path:
    """The checkout; explicit files may also be checked outside of one."""
    from watcher.gitrepo import starting_directory, toplevel

    start = starting_directory(args.repo)
    try:
        return toplevel(start).resolve()
    except UsageError:
        if args.paths and not args.repo:
            return start.resolve()
        raise


def _collect(
    args: argparse.Namespace, repo: Path, profile: Profile | None
) -> list[CheckedFile]:
    from watcher import inspection
    from watcher.validation import Profile

    if args.range:
        return inspection.check_range(repo, args.range, profile)
    if args.staged:
        return inspection.check_staged(repo, profile, every_file=args.all)
    paths = args.paths or inspection.worktree_paths(repo)
    return inspection.check_worktree(repo, paths, profile or Profile.STRICT)
