"""The keeper of a build command: it waits for the command and notes how it ended.

`python -I -m watcher.buildexit STATUS_FILE COMMAND...` leads the build's process
group. A daemon killed mid-build (kill -9) never learns its build's exit status:
the keeper outlives it, and leaves the status in STATUS_FILE (written atomically),
so the restarted daemon reports the build instead of running it again.

The keeper catches SIGTERM, SIGINT and SIGHUP without acting on them (a handler,
not SIG_IGN, which the command would inherit): the daemon signals the whole group,
so the command gets them and the keeper lives on to note its end. SIGKILL ends
the keeper like any member. It exits as the command did, so the daemon sees the
same status either way. Only the standard library is imported: `-I` keeps the
build's own directory (and `PYTHON*` variables) out of the keeper's imports.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

CANNOT_RUN = 127


def main(argv: list[str]) -> int:
    status_file, command = Path(argv[0]), argv[1:]
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, lambda number, frame: None)
    try:
        # The one child started outside `watcher.process`: the keeper must stay
        # free of the package's imports, and the command is an argument list.
        child = subprocess.Popen(command)
    except OSError as error:
        reason = f"cannot run `{command[0]}`: {error.strerror}"
        write_status(status_file, {"returncode": CANNOT_RUN, "error": reason})
        return CANNOT_RUN
    returncode = wait_through_signals(child)
    write_status(status_file, {"returncode": returncode})
    if returncode < 0:
        signal.signal(-returncode, signal.SIG_DFL)
        os.kill(os.getpid(), -returncode)
    return returncode


def wait_through_signals(child: subprocess.Popen[bytes]) -> int:
    while True:
        try:
            return child.wait()
        except InterruptedError:
            continue


def write_status(path: Path, status: dict[str, object]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(status, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def read_status(path: Path) -> dict[str, object] | None:
    """What a keeper noted, or None when it noted nothing (or not readably)."""
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
