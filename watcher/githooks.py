"""The git hooks a checkout runs, and installing them without losing anyone else's.

Each hook is a few lines of POSIX sh that run `build-watcher hook NAME` (the same
text as the project's `hooks/` directory). A hook that was already there is kept
as `NAME.local` and runs first, with the same arguments and standard input;
uninstalling puts it back. Hooks go where git looks for them,
`git rev-parse --git-path hooks`, which follows `core.hooksPath`.
"""

from __future__ import annotations

import enum
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from watcher.errors import WatcherError
from watcher.gitrepo import run_git

HOOK_NAMES = ("pre-commit", "post-merge", "post-checkout", "post-rewrite")
MARKER = "# build-watcher hook:"
LOCAL_SUFFIX = ".local"
_MISSING_STATUS = {"pre-commit": 1}  # the post-* hooks cannot stop anything anyway

_TEMPLATE = """\
#!/bin/sh
{marker} {name}
# Installed by `build-watcher hooks install`. A hook that was here before is kept
# as {name}{local} and runs first.
if [ -x "$0{local}" ]; then
    "$0{local}" "$@"{stop}
fi
if ! command -v build-watcher >/dev/null 2>&1; then
    echo "build-watcher is not installed, so the {name} hook {effect}." >&2
    echo "  install it: pip install build-watcher (or put it on PATH)" >&2
{bypass}    exit {status}
fi
exec build-watcher hook {name} "$@"
"""


class HookAction(enum.Enum):
    INSTALLED = "installed"
    CHAINED = "installed, chaining the existing hook"
    UPDATED = "updated"
    UNCHANGED = "already installed"
    REMOVED = "removed"
    RESTORED = "removed, the previous hook restored"
    NOT_OURS = "left alone: not a build-watcher hook"
    ABSENT = "not installed"


@dataclass(frozen=True)
class HookChange:
    name: str
    path: Path
    action: HookAction

    def to_json(self) -> dict[str, str]:
        return {"hook": self.name, "path": str(self.path), "action": self.action.name}


def hook_script(name: str) -> str:
    """The text of one installed hook."""
    status = _MISSING_STATUS.get(name, 0)
    refused = "refused this commit" if status else "could not wake the daemon"
    bypass = '    echo "  to commit without the check: git commit --no-verify" >&2\n'
    return _TEMPLATE.format(
        marker=MARKER,
        name=name,
        local=LOCAL_SUFFIX,
        effect=refused,
        bypass=bypass if status else "",
        status=status,
        # A refusal by the chained hook stops a commit; after the fact, nothing can.
        stop=" || exit $?" if status else "",
    )


def hooks_directory(repo: Path) -> Path:
    """Where git runs this checkout's hooks from (`core.hooksPath` respected)."""
    out = run_git(["rev-parse", "--git-path", "hooks"], cwd=repo).decode().strip()
    return (repo / out).resolve()


def is_ours(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return MARKER.encode() in handle.read(4096)
    except (FileNotFoundError, IsADirectoryError):
        return False


def install_hooks(repo: Path) -> list[HookChange]:
    """Install every hook; idempotent, and an existing hook is chained, not lost."""
    directory = hooks_directory(repo)
    directory.mkdir(parents=True, exist_ok=True)
    return [_install(directory / name, name) for name in HOOK_NAMES]


def _install(path: Path, name: str) -> HookChange:
    script = hook_script(name)
    if is_ours(path):
        if path.read_text(encoding="utf-8") == script and os.access(path, os.X_OK):
            return HookChange(name, path, HookAction.UNCHANGED)
        _write_executable(path, script)
        return HookChange(name, path, HookAction.UPDATED)
    action = HookAction.INSTALLED
    if path.exists() or path.is_symlink():
        local = path.with_name(name + LOCAL_SUFFIX)
        if local.exists() or local.is_symlink():
            raise WatcherError(
                f"{path} is not a build-watcher hook, and {local.name} exists too",
                hint=f"merge them by hand, or remove {local}, then run "
                "`build-watcher hooks install` again",
            )
        path.rename(local)
        action = HookAction.CHAINED
    _write_executable(path, script)
    return HookChange(name, path, action)


def uninstall_hooks(repo: Path) -> list[HookChange]:
    """Remove our hooks and put back any hook they chained."""
    directory = hooks_directory(repo)
    return [_uninstall(directory / name, name) for name in HOOK_NAMES]


def _uninstall(path: Path, name: str) -> HookChange:
    if not is_ours(path):
        exists = path.exists() or path.is_symlink()
        return HookChange(
            name, path, HookAction.NOT_OURS if exists else HookAction.ABSENT
        )
    path.unlink()
    local = path.with_name(name + LOCAL_SUFFIX)
    if local.exists() or local.is_symlink():
        local.rename(path)
        return HookChange(name, path, HookAction.RESTORED)
    return HookChange(name, path, HookAction.REMOVED)


def _write_executable(path: Path, text: str) -> None:
    """Atomically: git must never run a half-written hook."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o755)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
