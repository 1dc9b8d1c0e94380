"""The layout of a coordination repository: which path holds which kind of document.

This is the one map from repository path to document kind (and so to schema) that
the hook, the command line and the daemon all use.
"""

from __future__ import annotations

import enum
import re
from pathlib import PurePosixPath

JOBS_PATH = "coordination/jobs.json"
LOCKS_PATH = "coordination/locks.json"
MESSAGES_PATH = "coordination/messages.json"
ARCHIVE_DIR = "coordination/archive"
BUILD_CONFIG_PATH = "shared/build_config.json"
DASHBOARD_PATH = "shared/health_dashboard.json"
IDENTITY_FILE = ".build_server_id"
SHARED_DIRS = frozenset({"coordination", "shared"})

_SERVER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_ARCHIVE_FILE = re.compile(r"^coordination/archive/messages-\d{4}-\d{2}\.json$")


class DocumentKind(enum.Enum):
    """A kind of coordination document; its value names its schema file."""

    STATUS = "status"
    HEARTBEAT = "heartbeat"
    JOBS = "jobs"
    LOCKS = "locks"
    MESSAGES = "messages"
    MESSAGE_ARCHIVE = "message_archive"
    BUILD_CONFIG = "build_config"
    HEALTH_DASHBOARD = "health_dashboard"

    @property
    def schema_file(self) -> str:
        return f"{self.value}.schema.json"


_FIXED_PATHS = {
    JOBS_PATH: DocumentKind.JOBS,
    LOCKS_PATH: DocumentKind.LOCKS,
    MESSAGES_PATH: DocumentKind.MESSAGES,
    BUILD_CONFIG_PATH: DocumentKind.BUILD_CONFIG,
    DASHBOARD_PATH: DocumentKind.HEALTH_DASHBOARD,
}
_SERVER_FILES = {
    "status.json": DocumentKind.STATUS,
    "heartbeat.json": DocumentKind.HEARTBEAT,
}


def is_valid_server_id(name: str) -> bool:
    """A server id is also a directory and a branch name, so it is kept plain."""
    return bool(_SERVER_ID.match(name)) and name not in SHARED_DIRS and name != "all"


def kind_of(path: str) -> DocumentKind | None:
    """The document kind stored at a repository-relative POSIX path, if any."""
    if path in _FIXED_PATHS:
        return _FIXED_PATHS[path]
    if _ARCHIVE_FILE.match(path):
        return DocumentKind.MESSAGE_ARCHIVE
    parts = PurePosixPath(path).parts
    if len(parts) == 2 and parts[1] in _SERVER_FILES and is_valid_server_id(parts[0]):
        return _SERVER_FILES[parts[1]]
    return None


def is_coordination_path(path: str) -> bool:
    """A JSON file the product looks at: shared directories and server directories.

    Files here that no schema covers are still parsed and reported as having no
    schema. Server directories are recognised by their name alone here; callers
    that see the whole tree use `server_ids` for the exact rule.
    """
    parts = PurePosixPath(path).parts
    if not path.endswith(".json") or len(parts) < 2:
        return False
    return parts[0] in SHARED_DIRS or is_valid_server_id(parts[0])


def server_of(path: str) -> str | None:
    """The server whose directory holds `path`, for per-server documents."""
    kind = kind_of(path)
    if kind in (DocumentKind.STATUS, DocumentKind.HEARTBEAT):
        return PurePosixPath(path).parts[0]
    return None


def status_path(server: str) -> str:
    return f"{server}/status.json"


def heartbeat_path(server: str) -> str:
    return f"{server}/heartbeat.json"


def server_ids(paths: list[str] | set[str] | frozenset[str]) -> list[str]:
    """Servers in a tree: top-level directories with status.json or heartbeat.json."""
    found = {server for path in paths if (server := server_of(path)) is not None}
    return sorted(found)


def empty_documents() -> dict[str, object]:
    """The shared documents of a new coordination repository, in the strict form."""
    return {
        JOBS_PATH: {"jobs": []},
        LOCKS_PATH: {"locks": {}},
        MESSAGES_PATH: {"messages": []},
        BUILD_CONFIG_PATH: {
            "cloudstack": {
                "branch": "main",
                "repository": "https://github.com/apache/cloudstack.git",
            },
            "build": {"maven_opts": "-Xmx4g", "profiles": [], "skip_tests": True},
        },
    }
