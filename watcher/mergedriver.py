"""A git merge driver for people who pull and merge coordination files by hand.

`install_driver` registers `build-watcher merge-driver %O %A %B %P` in the
checkout's config and routes the coordination paths to it through
`.git/info/attributes`, so nothing needs to be committed. The merge itself lives in
`watcher.recordmerge`... see `merge_documents` below.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from watcher.gitrepo import run_git, run_git_process

DRIVER = "build-watcher"
ATTRIBUTE_PATTERNS = (
    "coordination/*.json",
    "coordination/archive/*.json",
    "shared/*.json",
    "*/status.json",
    "*/heartbeat.json",
)
_BEGIN = "# build-watcher merge driver: begin (managed by `build-watcher hooks`)"
_END = "# build-watcher merge driver: end"


def driver_command() -> str:
    """The command git runs; this interpreter, so it works outside a venv's PATH."""
    python = shlex.quote(sys.executable)
    return f"{python} -m watcher merge-driver %O %A %B %P"


def attributes_path(repo: Path) -> Path:
    out = run_git(["rev-parse", "--git-path", "info/attributes"], repo).decode().strip()
    return (repo / out).resolve()


def install_driver(repo: Path) -> None:
    """Register the driver in `repo`'s config and attributes (idempotent)."""
    section = f"merge.{DRIVER}"
    run_git(["config", f"{section}.name", "build-watcher merge by record id"], repo)
    run_git(["config", f"{section}.driver", driver_command()], repo)
    block = [_BEGIN, *(f"{pattern} merge={DRIVER}" for pattern in ATTRIBUTE_PATTERNS)]
    _write_attributes(attributes_path(repo), [*block, _END])


def uninstall_driver(repo: Path) -> None:
    """Remove what `install_driver` added; other attributes and config stay."""
    run_git_process(["config", "--remove-section", f"merge.{DRIVER}"], repo)
    _write_attributes(attributes_path(repo), [])


def is_driver_installed(repo: Path) -> bool:
    configured = run_git_process(["config", f"merge.{DRIVER}.driver"], repo)
    path = attributes_path(repo)
    has_block = path.is_file() and _BEGIN in path.read_text(encoding="utf-8")
    return configured.returncode == 0 and has_block


def _write_attributes(path: Path, block: list[str]) -> None:
    """Replace our block in the attributes file, keeping every other line."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    kept: list[str] = []
    inside = False
    for line in lines:
        if line == _BEGIN:
            inside = True
        elif line == _END:
            inside = False
        elif not inside:
            kept.append(line)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text("".join(line + "\n" for line in [*kept, *block]), "utf-8")
    temporary.replace(path)
