"""The command line: parse, run one command, map its outcome to an exit code."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from watcher import __version__
from watcher.commands import BY_NAME, COMMANDS, module_name
from watcher.errors import EXIT_INTERRUPTED, EXIT_USAGE, WatcherError

PROG = "build-watcher"
_GLOBAL_OPTIONS_WITH_VALUE = {"--repo", "--node", "--config", "--log-format"}
FORMAT_HELP = "text for people (the default) or json for scripts"


def build_parser(selected: str | None) -> argparse.ArgumentParser:
    """The full parser; only the selected command's module is imported."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Coordinate a fleet of build servers through one git repository.",
    )
    add_global_options(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for spec in COMMANDS:
        sub = subparsers.add_parser(
            spec.name, help=spec.summary, description=spec.summary
        )
        if spec.name == selected:
            load_command(spec.name).add_arguments(sub)
            explain_format(sub)
    return parser


def explain_format(parser: argparse.ArgumentParser) -> None:
    """`--format` means the same in every command (and its subcommands): say so once."""
    for action in parser._actions:
        if "--format" in action.option_strings and not action.help:
            action.help = FORMAT_HELP
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                explain_format(subparser)


def add_global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    parser.add_argument(
        "--repo",
        metavar="PATH",
        help="the checkout (default: the one holding the current directory)",
    )
    parser.add_argument("--node", metavar="ID", help="this server's id")
    parser.add_argument("--config", metavar="FILE", help="the TOML config file")
    parser.add_argument(
        "--log-format", choices=("auto", "text", "json"), help="log line format"
    )
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="debug logs")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="warnings only")


def load_command(name: str) -> ModuleType:
    return importlib.import_module(module_name(name))


def find_command(argv: Sequence[str]) -> str | None:
    """The subcommand named in argv, found without importing any command module."""
    skip_next = False
    for token in argv:
        if skip_next:
            skip_next = False
        elif token in _GLOBAL_OPTIONS_WITH_VALUE:
            skip_next = True
        elif not token.startswith("-"):
            return token if token in BY_NAME else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    selected = find_command(arguments)
    parser = build_parser(selected)
    args = parser.parse_args(arguments)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    try:
        if BY_NAME[args.command].logs:
            from watcher.logs import configure_logging

            configure_logging(args)
        result: int = load_command(args.command).run(args)
        return result
    except WatcherError as error:
        report_error(error)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception:
        return report_crash()


def report_error(error: WatcherError) -> None:
    print(f"{PROG}: error: {error.message}", file=sys.stderr)
    if error.hint:
        print(f"  hint: {error.hint}", file=sys.stderr)


def report_crash() -> int:
    """An unexpected crash: keep the traceback in a file and say where it is."""
    # Imported here: every run pays for what the module imports, the pre-commit
    # hook's included, and only a crash needs these.
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile(
        "w", prefix="build-watcher-crash-", suffix=".log", delete=False
    ) as crash_file:
        traceback.print_exc(file=crash_file)
    print(
        f"{PROG}: internal error; the traceback was written to {crash_file.name}\n"
        "  please report it with that file",
        file=sys.stderr,
    )
    return 1


def entry() -> None:
    sys.exit(main())
