"""Build artifacts: the files a build leaves, with size and SHA-256.

Recorded in the seed's shape, `{"file": NAME, "size": BYTES, "sha256": HEX}`, where
NAME is the file's base name (the full local path stays on the server that built it).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHUNK_SIZE = 1 << 20


@dataclass(frozen=True)
class Artifact:
    """One file a build produced."""

    path: Path
    size: int
    sha256: str

    @property
    def name(self) -> str:
        return self.path.name

    def to_json(self) -> dict[str, Any]:
        return {"file": self.name, "size": self.size, "sha256": self.sha256}


def collect_artifacts(root: Path, patterns: Iterable[str]) -> list[Artifact]:
    """The regular files under `root` matching any glob, each once, sorted by path.

    Symbolic links, directories, FIFOs and devices are skipped: a build could point
    a link anywhere on the machine, and reading a FIFO would block.
    """
    found: set[Path] = set()
    for pattern in patterns:
        found.update(path for path in root.glob(pattern) if _is_regular_file(path))
    return [describe_artifact(path) for path in sorted(found)]


def describe_artifact(path: Path) -> Artifact:
    """Size and SHA-256 of one file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return Artifact(path, size, digest.hexdigest())


def _is_regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False
