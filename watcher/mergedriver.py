"""A git merge driver for people who pull and merge coordination files by hand.

`install_driver` registers `build-watcher merge-driver %O %A %B %P` in the
checkout's config and routes the coordination paths to it through
`.git/info/attributes`, so nothing needs to be committed. The merge itself is
`merge_documents`: three-way by record id for jobs, messages and locks, whole
documents for the rest, and never a conflict marker.

Rules when both sides changed the same thing differently (each reported):

- a job: the more advanced one wins: higher `attempt` first (a requeue fences the
  older try), then the later state (`queued` < `running` < finished), then ours;
- a message: fields merge one by one (ours on a clash), `read_by` is the union and
  `read` is true if either side read it;
- a lock: the higher `epoch` wins (it saw more changes of holder), then ours;
- a record one side deleted and the other changed: the changed one is kept;
- any other document, or other top-level fields: the side whose `timestamp` (or
  `last_updated`) is later wins, then ours.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watcher.gitrepo import run_git, run_git_process
from watcher.layout import DocumentKind, kind_of
from watcher.timestamps import parse_timestamp

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


@dataclass
class MergeResult:
    """The merged value, and one note per clash settled by a rule."""

    value: Any
    notes: list[str] = field(default_factory=list)


_MISSING: Any = object()
Chooser = Callable[[Any, Any, Any], tuple[Any, str]]


def merge_documents(path: str, base: Any, ours: Any, theirs: Any) -> MergeResult:
    """The three-way merge of one coordination document (base None: added on both)."""
    result = MergeResult(None)
    kind = kind_of(path)
    rule = _RULES.get(kind) if kind else None
    if rule is None or not (isinstance(ours, dict) and isinstance(theirs, dict)):
        result.value = _merge_whole(base, ours, theirs, path, result)
        return result
    key, chooser = rule
    records = _RecordMerge(chooser, f"{path} {key}", result.notes)
    base = base if isinstance(base, dict) else {}
    merged: dict[str, Any] = {}
    for name in [*ours, *(name for name in theirs if name not in ours)]:
        sides = [side.get(name, _MISSING) for side in (base, ours, theirs)]
        value = records.merge(*sides) if name == key else _three_way(*sides)
        if value is not _MISSING:
            merged[name] = value
    result.value = merged
    return result


def _three_way(base: Any, ours: Any, theirs: Any) -> Any:
    """One value: the side that changed it wins; when both did, ours."""
    return theirs if ours == base else ours


@dataclass
class _RecordMerge:
    """Merges one collection of records by id (a list) or by name (an object)."""

    chooser: Chooser
    where: str
    notes: list[str]

    def merge(self, base: Any, ours: Any, theirs: Any) -> Any:
        as_mapping = isinstance(ours if ours is not _MISSING else theirs, dict)
        keyed = [_keyed(side, as_mapping) for side in (base, ours, theirs)]
        merged = self.merge_keyed(*keyed)
        if as_mapping:
            return {key[0]: value for key, value in merged.items()}
        return list(merged.values())

    def merge_keyed(
        self, base: dict[Any, Any], ours: dict[Any, Any], theirs: dict[Any, Any]
    ) -> dict[Any, Any]:
        merged: dict[Any, Any] = {}
        for key in [*ours, *(key for key in theirs if key not in ours)]:
            sides = [side.get(key, _MISSING) for side in (base, ours, theirs)]
            value = self.merge_record(str(key[0]), *sides)
            if value is not _MISSING:
                merged[key] = value
        return merged

    def merge_record(self, label: str, base: Any, ours: Any, theirs: Any) -> Any:
        if ours is _MISSING or theirs is _MISSING:
            kept = theirs if ours is _MISSING else ours
            if base is _MISSING:
                return kept  # added on one side
            if kept == base:
                return _MISSING  # deleted on one side, unchanged on the other
            self.notes.append(
                f"{self.where}: kept {label}, deleted on one side "
                "but changed on the other"
            )
            return kept
        if theirs in (ours, base):
            return ours
        if ours == base:
            return theirs
        chosen, why = self.chooser(base, ours, theirs)
        self.notes.append(f"{self.where}: {label} changed on both sides; {why}")
        return chosen


def _keyed(side: Any, as_mapping: bool) -> dict[tuple[str, int], Any]:
    """Records keyed by id; records without a usable id by their content. The
    occurrence count keeps duplicates apart, so no record is ever folded away."""
    if as_mapping:
        items = side.items() if isinstance(side, dict) else []
        return {(str(name), 0): value for name, value in items}
    keyed: dict[tuple[str, int], Any] = {}
    for record in side if isinstance(side, list) else []:
        ident = record.get("id") if isinstance(record, dict) else None
        if not isinstance(ident, str):
            ident = "\0" + json.dumps(record, sort_keys=True)
        occurrence = 0
        while (ident, occurrence) in keyed:
            occurrence += 1
        keyed[(ident, occurrence)] = record
    return keyed


_STATE_RANK = {"queued": 0, "running": 1, "completed": 2, "failed": 2, "cancelled": 2}


def _choose_job(base: Any, ours: Any, theirs: Any) -> tuple[Any, str]:
    """The more advanced try wins: higher attempt, then the later state."""

    def rank(job: Any) -> tuple[int, int]:
        if not isinstance(job, dict):
            return (-1, -1)
        attempt = job.get("attempt")
        attempt = attempt if isinstance(attempt, int) else 1
        return (attempt, _STATE_RANK.get(str(job.get("status")), -1))

    if rank(theirs) > rank(ours):
        return theirs, f"kept theirs (attempt/state {rank(theirs)} > {rank(ours)})"
    return ours, f"kept ours (attempt/state {rank(ours)} >= {rank(theirs)})"


def _choose_message(base: Any, ours: Any, theirs: Any) -> tuple[Any, str]:
    """Field by field (ours on a clash); read state is the union of both."""
    if not (isinstance(ours, dict) and isinstance(theirs, dict)):
        return ours, "kept ours"
    base = base if isinstance(base, dict) else {}
    merged = {}
    for name in [*ours, *(name for name in theirs if name not in ours)]:
        value = _three_way(
            base.get(name, _MISSING),
            ours.get(name, _MISSING),
            theirs.get(name, _MISSING),
        )
        if value is not _MISSING:
            merged[name] = value
    if ours.get("read") is True or theirs.get("read") is True:
        merged["read"] = True
    if "read_by" in ours or "read_by" in theirs:
        merged["read_by"] = _union(ours.get("read_by"), theirs.get("read_by"))
    return merged, "merged field by field, read by either side"


def _union(ours: Any, theirs: Any) -> Any:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return {**theirs, **ours}
    ours_list = ours if isinstance(ours, list) else []
    theirs_list = theirs if isinstance(theirs, list) else []
    return [*ours_list, *(item for item in theirs_list if item not in ours_list)]


def _choose_lock(base: Any, ours: Any, theirs: Any) -> tuple[Any, str]:
    """The record that saw more changes of holder (higher epoch) wins."""

    def epoch(record: Any) -> int:
        value = record.get("epoch") if isinstance(record, dict) else None
        return value if isinstance(value, int) else 0

    if epoch(theirs) > epoch(ours):
        return theirs, f"kept theirs (epoch {epoch(theirs)} > {epoch(ours)})"
    return ours, f"kept ours (epoch {epoch(ours)} >= {epoch(theirs)})"


_RULES: dict[DocumentKind, tuple[str, Chooser]] = {
    DocumentKind.JOBS: ("jobs", _choose_job),
    DocumentKind.MESSAGES: ("messages", _choose_message),
    DocumentKind.MESSAGE_ARCHIVE: ("messages", _choose_message),
    DocumentKind.LOCKS: ("locks", _choose_lock),
}
_TIME_FIELDS = ("timestamp", "last_updated", "updated_at")


def _merge_whole(
    base: Any, ours: Any, theirs: Any, path: str, result: MergeResult
) -> Any:
    """A document merged as one value: the side that changed it, else the later."""
    if theirs in (ours, base):
        return ours
    if ours == base:
        return theirs
    if _written_at(theirs) > _written_at(ours):
        result.notes.append(f"{path}: changed on both sides; kept theirs (later)")
        return theirs
    result.notes.append(f"{path}: changed on both sides; kept ours")
    return ours


def _written_at(document: Any) -> str:
    """When a side says it was written, comparable as text once normalised."""
    if not isinstance(document, dict):
        return ""
    for name in _TIME_FIELDS:
        moment = parse_timestamp(document.get(name))
        if moment is not None:
            return moment.isoformat()
    return ""
