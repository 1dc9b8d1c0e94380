"""The documents at the remote tip as transactions read them, kept between them.

Every transaction starts from the documents at the tip it fetched. A long-running
process (the daemon) keeps the last snapshot read per repository and a cache of
parsed blobs, so it re-parses only documents that changed since its last
transaction (a claim rewrites one file of several); and its own commit, the likely
next tip, needs no parse at all. The documents are checked with the legacy profile
without warnings: a transaction only needs to know which are valid.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from watcher.config import Config
from watcher.documents import BlobCache, Snapshot, read_blobs, read_snapshot
from watcher.jsonload import MAX_BYTES
from watcher.layout import kind_of
from watcher.validation import DocumentResult, Profile, check_document, vouch_for


class TipCache:
    """The last snapshot read per repository, and its parsed blobs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last: dict[Path, Snapshot] = {}
        self.caches: dict[Path, BlobCache] = {}

    def read(self, repo: Path, tip: str) -> Snapshot:
        with self.lock:
            previous = self.last.get(repo)
            cache = self.caches.setdefault(repo, BlobCache())
        snapshot = read_snapshot(
            repo, tip, previous=previous, cache=cache, warnings=False
        )
        with self.lock:
            self.last[repo] = snapshot
        return snapshot

    def remember_written(
        self,
        repo: Path,
        changes: Mapping[str, bytes | None],
        documents: Mapping[str, Any],
    ) -> None:
        """Our own commit's documents passed the strict checks of what they change:
        valid, they need no second parse. The key is the blob's id as git computes
        it (SHA-1 repositories; elsewhere the entry is simply never hit)."""
        with self.lock:
            cache = self.caches.setdefault(repo, BlobCache())
            for path, value in documents.items():
                data = changes.get(path)
                # A store archived but still over the size limit stays refused.
                if data is not None and len(data) <= MAX_BYTES:
                    blob = blob_id(data)
                    cache.put(blob, path, DocumentResult(path, kind_of(path), value))
                    vouch_for(path, blob)


TIPS = TipCache()


def snapshot_at(config: Config, tip: str | None) -> Snapshot:
    """The documents at `tip` (legacy profile), nothing for an empty branch."""
    return TIPS.read(config.repo, tip) if tip else Snapshot(None)


def remember_written(
    repo: Path, changes: Mapping[str, bytes | None], documents: Mapping[str, Any]
) -> None:
    TIPS.remember_written(repo, changes, documents)


def read_past_limit(repo: Path, base: Snapshot, path: str) -> DocumentResult:
    """The document at `path` of `base`, checked with the loader's size limit
    lifted (legacy profile): for an operation that shrinks an oversized store."""
    blob = base.blobs[path]
    data = read_blobs(repo, [blob])[blob]
    return check_document(path, data, Profile.LEGACY, warnings=False, max_bytes=None)


def blob_id(data: bytes) -> str:
    header = b"blob %d\0" % len(data)
    return hashlib.sha1(header + data, usedforsecurity=False).hexdigest()
