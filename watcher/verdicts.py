"""Records known to pass validation, remembered from one process to the next.

Every write is a transaction that first reads the documents at the remote tip, and
refuses to write over one that is broken. On a store of 20,000 messages, checking
every record with jsonschema took a second and a half in each `build-watcher send`,
though nearly all of them were checked, and passed, by the command before. Within
one process `watcher.recordmemory.RECORDS` remembers what each distinct record broke;
this file keeps the records that broke nothing between processes, as 16-byte
digests, in the private state directory.

A verdict depends on the schemas and the code that applies them, so the file starts
with a fingerprint of both and one with another fingerprint is ignored (and
replaced). The file is a cache: losing it, or a write of it lost to a concurrent
process, only costs validating those records again.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from importlib import resources
from pathlib import Path

from loguru import logger

from watcher import findings, recordmemory, schemas
from watcher.layout import DocumentKind

FILE_NAME = "valid-records"
# 1 MiB; past it the file keeps only what this process remembers (at most as
# many as a process keeps: a longer file would only churn its memory).
MAX_DIGESTS = recordmemory.RECORDS.capacity
_HEADER = b"build-watcher valid records "
_DIGEST_SIZE = recordmemory.DIGEST_SIZE


class RecordVerdicts:
    """The digests file of one state directory, loaded once per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: set[Path] = set()

    def load(self, directory: Path) -> None:
        """Make the records this file knows to be valid known in this process."""
        with self._lock:
            if directory in self._loaded:
                return
            self._loaded.add(directory)
        digests = read_digests(directory / FILE_NAME)
        recordmemory.RECORDS.seed_valid(digests)
        logger.bind(count=len(digests)).debug("known valid records loaded")

    def save(self, directory: Path) -> None:
        """Add the records found valid since the last save (nothing to do: no write)."""
        fresh = recordmemory.RECORDS.take_fresh_valid()
        if not fresh:
            return
        path = directory / FILE_NAME
        with self._lock:
            known = read_digests(path)
            if len(known) + len(fresh) > MAX_DIGESTS:
                known, fresh = [], recordmemory.RECORDS.valid_digests()[-MAX_DIGESTS:]
            write_digests(path, [*known, *fresh])


VERDICTS = RecordVerdicts()


def read_digests(path: Path) -> list[bytes]:
    """The digests in `path`; none when it is missing, torn, or of other code."""
    try:
        data = path.read_bytes()
    except OSError:
        return []
    header = _HEADER + fingerprint() + b"\n"
    body = data[len(header) :]
    if not data.startswith(header) or len(body) % _DIGEST_SIZE:
        return []
    return [body[i : i + _DIGEST_SIZE] for i in range(0, len(body), _DIGEST_SIZE)]


def write_digests(path: Path, digests: list[bytes]) -> None:
    """Replace the file at once (temporary file, rename). Not fsynced: after a
    crash a torn file fails its header check and is simply rebuilt."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    contents = b"".join([_HEADER, fingerprint(), b"\n", *dict.fromkeys(digests)])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(contents)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        logger.bind(path=str(path)).debug(
            "valid records not saved: {error}", error=error
        )


_FINGERPRINT: list[bytes] = []


def fingerprint() -> bytes:
    """What a verdict depends on: the bundled schemas, the modules of this package
    and of jsonschema that apply them, and the Python that computes the digests."""
    if not _FINGERPRINT:
        import jsonschema

        digest = hashlib.sha256(sys.version.encode())
        judges = sorted(Path(jsonschema.__file__).parent.glob("*.py"))
        ours = [Path(m.__file__ or "") for m in (findings, recordmemory, schemas)]
        for source in [*ours, *judges]:
            digest.update(source.read_bytes())
        package = resources.files(schemas.SCHEMA_PACKAGE)
        for kind in DocumentKind:
            digest.update(package.joinpath(kind.schema_file).read_bytes())
        _FINGERPRINT.append(digest.hexdigest()[:32].encode())
    return _FINGERPRINT[0]
