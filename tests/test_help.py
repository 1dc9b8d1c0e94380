"""Help is complete and agrees with the README; bash completion parses."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_readme import first_column, readme_section
from watcher.commands import BY_NAME, COMMANDS
from watcher.main import build_parser

CLI = [sys.executable, "-m", "watcher"]


def run_cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *arguments], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_top_level_help_lists_every_command() -> None:
    completed = run_cli("--help")

    assert completed.returncode == 0, completed.stderr
    for spec in COMMANDS:
        assert f"    {spec.name} " in completed.stdout


@pytest.mark.parametrize("command", [spec.name for spec in COMMANDS])
def test_each_command_has_help(command: str) -> None:
    completed = run_cli(command, "--help")

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"usage: build-watcher {command}")
    assert completed.stderr == ""


def test_the_readme_lists_exactly_the_commands_with_their_summaries() -> None:
    section = readme_section("Commands")
    listed = first_column(section)

    assert sorted(listed) == sorted(BY_NAME)
    for spec in COMMANDS:
        assert f"| `{spec.name}` | {spec.summary} |" in section


def test_each_command_module_says_what_the_table_says() -> None:
    import importlib

    for spec in COMMANDS:
        module = importlib.import_module(
            "watcher.commands." + spec.name.replace("-", "_")
        )
        assert spec.summary == module.HELP, spec.name


def test_the_bash_completion_script_parses_and_knows_the_commands(
    tmp_path: Path,
) -> None:
    if shutil.which("bash") is None:
        pytest.fail("bash is needed to check the completion script")
    completed = run_cli("completion")
    assert completed.returncode == 0, completed.stderr
    script = tmp_path / "build-watcher.bash"
    script.write_text(completed.stdout)

    syntax = subprocess.run(
        ["bash", "-n", str(script)], capture_output=True, text=True, check=False
    )

    assert syntax.returncode == 0, syntax.stderr
    [words] = re.findall(r'case " ([^"]+) " in', completed.stdout)
    offered = {spec.name for spec in COMMANDS} - {"merge-driver"}
    assert set(words.split()) == offered


def test_the_completion_offers_commands_in_bash(tmp_path: Path) -> None:
    completed = run_cli("completion")
    probe = (
        completed.stdout
        + "\nCOMP_WORDS=(build-watcher s); COMP_CWORD=1; _build_watcher;"
        + ' printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(
        ["bash", "-c", probe], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == ["send", "status", "submit"]


def test_every_option_and_argument_of_every_command_is_explained() -> None:
    unexplained = []
    for spec in COMMANDS:
        parser = build_parser(spec.name)
        for path, action in _actions(_subparser(parser, spec.name), spec.name):
            if not action.help:
                unexplained.append(f"{path} {action.option_strings or action.dest}")

    assert unexplained == []


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    [commands] = [
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    ]
    chosen: argparse.ArgumentParser = commands.choices[name]
    return chosen


def _actions(
    parser: argparse.ArgumentParser, path: str
) -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                found += _actions(subparser, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            found.append((path, action))
    return found
