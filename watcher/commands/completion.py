"""`build-watcher completion`: a bash completion script for the command line."""

from __future__ import annotations

import argparse

from watcher.commands import COMMANDS

HELP = "print a bash completion script"

_SCRIPT = """\
# bash completion for build-watcher
# install: build-watcher completion > /etc/bash_completion.d/build-watcher
_build_watcher() {
    local current=${COMP_WORDS[COMP_CWORD]}
    local previous=${COMP_WORDS[COMP_CWORD-1]}
    case $previous in
        --repo|--config|--body-file|--html|--keep)
            COMPREPLY=($(compgen -f -- "$current")); return ;;
        --format)
            COMPREPLY=($(compgen -W "text json" -- "$current")); return ;;
        --profile)
            COMPREPLY=($(compgen -W "strict legacy" -- "$current")); return ;;
        --log-format)
            COMPREPLY=($(compgen -W "auto text json" -- "$current")); return ;;
    esac
    local word command=""
    for word in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
        case " __COMMANDS__ " in *" $word "*) command=$word; break ;; esac
    done
    if [ -z "$command" ]; then
        COMPREPLY=($(compgen -W "__COMMANDS__ __GLOBALS__" -- "$current"))
    else
        local options
        options=$(build-watcher "$command" --help 2>/dev/null \\
            | grep -oE -- '--[a-z][a-z-]*' | sort -u)
        COMPREPLY=($(compgen -W "$options" -- "$current"))
    fi
}
complete -o default -F _build_watcher build-watcher
"""
_GLOBALS = "--repo --node --config --log-format --verbose --quiet --help --version"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "shell", nargs="?", default="bash", choices=("bash",), help="only bash so far"
    )


def run(args: argparse.Namespace) -> int:
    names = " ".join(spec.name for spec in COMMANDS if spec.name != "merge-driver")
    script = _SCRIPT.replace("__COMMANDS__", names).replace("__GLOBALS__", _GLOBALS)
    print(script, end="")
    return 0
