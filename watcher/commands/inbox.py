"""`build-watcher inbox`: messages for this server, oldest first.

The messages are read from git objects at the tip of the remote branch as last
fetched (HEAD when there is no remote-tracking branch), never from the working
tree. Only the message files are read and parsed, without the schema pass, so that
a store of tens of thousands of messages lists in well under a second; the
mailbox queries accept any shape a legacy store holds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watcher.config import Config, load_config
from watcher.errors import WatcherError
from watcher.layout import ARCHIVE_DIR, MESSAGES_PATH

if TYPE_CHECKING:
    from watcher.messages import InboxEntry

HELP = "list messages for this server"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--all", action="store_true", help="include read and archived messages"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    from watcher.messages import inbox

    config = load_config(args.repo, args.node, args.config)
    me = config.require_node()
    documents = read_message_documents(config, include_archive=args.all)
    entries = inbox(documents, me, include_read=args.all)
    if args.format == "json":
        print(json.dumps(render_json(me, args.all, entries), indent=2))
    else:
        sys.stdout.write(render_text(me, args.all, entries))
    return 0


def shared_tip(config: Config) -> str:
    """The remote branch as last fetched, else HEAD: what the fleet has shared."""
    from watcher.gitrepo import run_git

    tracking = config.tracking_ref
    for rev in (tracking, "HEAD"):
        out = run_git(
            ["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
            cwd=config.repo,
            check=False,
        )
        if out.strip():
            return out.decode().strip()
    raise WatcherError(
        f"{config.repo}: no commit to read messages from ({tracking} and HEAD "
        "are both missing)",
        hint="clone the coordination repository, or run `build-watcher init`",
    )


def read_message_documents(config: Config, include_archive: bool) -> dict[str, Any]:
    """The message store (and its archive) at the shared tip, as parsed documents."""
    from watcher.gitrepo import run_git

    commit = shared_tip(config)
    wanted = [MESSAGES_PATH, ARCHIVE_DIR] if include_archive else [MESSAGES_PATH]
    listing = run_git(["ls-tree", "-r", "-z", commit, "--", *wanted], cwd=config.repo)
    blobs = _blob_ids(listing)
    contents = _read_blobs(config.repo, list(blobs.values()))
    return {
        path: _parse(config.repo, path, contents[sha]) for path, sha in blobs.items()
    }


def _blob_ids(listing: bytes) -> dict[str, str]:
    """Path to object id from `ls-tree -z` lines: `<mode> <type> <object>\\t<path>`."""
    blobs = {}
    for entry in filter(None, listing.split(b"\0")):
        meta, _, raw_path = entry.partition(b"\t")
        _mode, kind, sha = meta.decode().split(" ")
        path = raw_path.decode("utf-8", "surrogateescape")
        if kind == "blob" and path.endswith(".json"):
            blobs[path] = sha
    return blobs


def _read_blobs(repo: Path, shas: list[str]) -> dict[str, bytes]:
    """Blob contents through one `git cat-file --batch`.

    `watcher.documents.read_blobs` does the same, but importing that module loads
    the schema validator, which alone costs a fifth of this command's time budget.
    """
    from watcher.gitrepo import run_git

    if not shas:
        return {}
    out = run_git(
        ["cat-file", "--batch"], cwd=repo, input_bytes="\n".join(shas).encode() + b"\n"
    )
    contents, position = {}, 0
    for sha in shas:
        header_end = out.index(b"\n", position)
        size = int(out[position:header_end].split(b" ")[2])
        contents[sha] = out[header_end + 1 : header_end + 1 + size]
        position = header_end + 1 + size + 1
    return contents


def _parse(repo: Path, path: str, data: bytes) -> Any:
    """The parsed store. Listing needs only the values, so the plain parser reads
    it; the strict loader (duplicate keys, depth, size) is consulted only to say
    precisely why a store does not parse. Writes still go through the strict one."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        pass
    from watcher.jsonload import LoadError, load_json

    try:
        value, _warnings = load_json(data, path)
    except LoadError as error:
        raise WatcherError(
            f"{path} at the shared tip does not parse: {error.problem.message}",
            hint=f"run `build-watcher --repo {repo} validate {path}` for the details",
        ) from error
    return value


def render_json(me: str, include_read: bool, entries: list[InboxEntry]) -> Any:
    return {
        "server": me,
        "include_read": include_read,
        "count": len(entries),
        "messages": [entry.to_json() for entry in entries],
    }


def render_text(me: str, include_read: bool, entries: list[InboxEntry]) -> str:
    lines = []
    for entry in entries:
        message = entry.message
        mark = "  (read)" if entry.is_read else ""
        flags = " automated" if message.automated else ""
        lines.append(
            printable(
                f"{message.id}  {message.timestamp}  from {message.sender} "
                f"to {message.to}  [{message.type}{flags}]{mark}"
            )
        )
        lines.append(f"  {printable(message.subject)}")
        lines.extend(f"    {printable(line)}" for line in message.body.splitlines())
        lines.append("")
    what = "messages" if include_read else "unread messages"
    lines.append(f"{len(entries)} {what} for {me}")
    return "\n".join(lines) + "\n"


def printable(text: str) -> str:
    """Text from the repository with control characters made visible: a message
    must not be able to move the cursor or retitle the terminal of its reader."""
    return text.translate(_CONTROL_CHARACTERS)


_CONTROL_CHARACTERS = {
    code: f"\\x{code:02x}" for code in [*range(32), *range(127, 160)] if code != 9
}
