"""The README runs as shown: its runnable blocks, its configuration, its tables."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, checkout_at
from watcher.commandhandler import PLACEHOLDERS, build_handlers
from watcher.config import Config, load_config
from watcher.events import EventKind
from watcher.responder import compile_rules

README = PROJECT_ROOT / "README.md"
FIRST_COMMANDS = [
    "python3 -m venv .venv && .venv/bin/pip install -q -e . "
    "&& .venv/bin/build-watcher demo",
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' "
    "&& .venv/bin/python -m pytest -n 2",
]
BLOCK_DEADLINE = 120
_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    info: str
    text: str
    line: int

    @property
    def words(self) -> list[str]:
        return self.info.split()


def readme_blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    return [
        Block(m.group(1).strip(), m.group(2), text.count("\n", 0, m.start()) + 1)
        for m in _FENCE.finditer(text)
    ]


def readme_section(title: str) -> str:
    """The text of the `## title` section, up to the next second-level title."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def first_column(section: str) -> list[str]:
    """The code-formatted first cells of a section's table rows."""
    return re.findall(r"^\| `([^`]+)`[^|]*\|", section, re.MULTILINE)


def test_the_readme_opens_with_the_two_commands_unmarked() -> None:
    text = README.read_text(encoding="utf-8")
    title, rest = text.split("\n", 1)
    assert title == "# build-watcher"
    first = readme_blocks()[0]
    assert rest.lstrip("\n").startswith("```sh\n")
    assert first.words == ["sh"]
    assert first.text.splitlines() == FIRST_COMMANDS


def test_the_runnable_blocks_run_in_order_in_an_empty_directory(
    tmp_path: Path,
) -> None:
    runnable = [block for block in readme_blocks() if block.words == ["sh", "runnable"]]
    assert len(runnable) >= 4
    env = _environment()
    for block in runnable:
        completed = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", block.text],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=BLOCK_DEADLINE,
            check=False,
        )
        assert completed.returncode == 0, (
            f"README.md line {block.line}: exit status {completed.returncode}\n"
            f"{block.text}\n--- stdout\n{completed.stdout}\n--- stderr\n"
            f"{completed.stderr}"
        )


def _environment() -> dict[str, str]:
    """`build-watcher` on PATH; nothing inherited that would steer git or it."""
    scripts = Path(sys.executable).parent
    if not (scripts / "build-watcher").exists():
        pytest.fail(f"build-watcher is not installed next to {sys.executable}")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("GIT_", "BUILD_WATCHER_"))
    }
    env["PATH"] = f"{scripts}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.parametrize(
    "block",
    [block for block in readme_blocks() if block.words == ["toml", "config"]],
    ids=lambda block: f"line{block.line}",
)
def test_each_configuration_example_loads(block: Block, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(block.text, encoding="utf-8")

    config = load_config(str(checkout_at(tmp_path)), "build1", str(path), environ={})

    build_handlers(config)
    compile_rules(config.reply_rules, str(path))


def test_the_settings_table_lists_every_setting() -> None:
    listed = first_column(readme_section("Put a real fleet on it"))
    settings = [field.name for field in fields(Config) if field.name != "source"]
    assert sorted(listed) == sorted(settings)


def test_the_events_table_lists_every_event_kind() -> None:
    listed = first_column(readme_section("Events"))
    assert sorted(listed) == sorted(kind.value for kind in EventKind)


def test_every_handler_placeholder_is_named() -> None:
    section = readme_section("Events")
    for name in PLACEHOLDERS:
        assert f"`{{{name}}}`" in section


def test_every_benchmark_is_listed() -> None:
    listed = first_column(readme_section("Benchmarks"))
    scripts = sorted(
        f"bench/{path.name}" for path in (PROJECT_ROOT / "bench").glob("*.py")
    )
    assert sorted(listed) == scripts


def test_every_unit_named_exists() -> None:
    named = set(re.findall(r"units/[\w@.-]+\.service", README.read_text()))
    assert named
    for unit in named:
        assert (PROJECT_ROOT / unit).is_file(), unit
