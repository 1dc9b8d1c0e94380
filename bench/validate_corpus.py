"""Validating every file version in the real corpus history: versions per second.

Every distinct version (path and blob) that a commit of the history introduced is
validated:

- in process, `check_document` in the strict and in the legacy profile (legacy
  validates strict first and only re-validates what departs from it);
- whole process, `build-watcher validate --range main --profile legacy`, which
  also reads the history from git (`git log --raw` and one `cat-file --batch`);
- check-jsonschema on the versions that have a schema, written out as files and
  passed in one process per schema (its fastest way), against the same bundled
  schema files. It ignores `x-legacy`, so it does the strict profile's work.

    .venv/bin/python bench/validate_corpus.py [--bundle PATH] [--sample N]

`--sample N` gives check-jsonschema every Nth version of each kind (default 1:
all of them), for a quick run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from watcher.layout import kind_of
from watcher.revisions import range_versions, read_blobs
from watcher.validation import Profile, check_document

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BUNDLE = ROOT.parent / "shared" / "corpus" / "history.bundle"


def clone(bundle: Path, scratch: Path) -> Path:
    repo = scratch / "history"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    subprocess.run(
        ["git", "clone", "--quiet", str(bundle), str(repo)], env=env, check=True
    )
    return repo


def distinct_versions(repo: Path) -> list[tuple[str, bytes]]:
    pairs = sorted({(v.path, v.blob) for v in range_versions(repo, "main")})
    contents = read_blobs(repo, {blob for _, blob in pairs})
    return [(path, contents[blob]) for path, blob in pairs]


def in_process(versions: list[tuple[str, bytes]], profile: Profile) -> float:
    forget_records()
    start = time.perf_counter()
    invalid = sum(not check_document(p, d, profile).is_valid for p, d in versions)
    seconds = time.perf_counter() - start
    print(
        f"  in process, {profile.value:<7} {len(versions) / seconds:8.0f} versions/s"
        f"   ({len(versions)} in {seconds:.2f} s, {invalid} invalid)"
    )
    return seconds


def forget_records() -> None:
    """Each figure starts from nothing remembered, as a fresh process would."""
    from watcher.recordmemory import RECORDS

    RECORDS.clear()


def whole_process(repo: Path) -> None:
    command = [str(BIN / "build-watcher"), "-q", "validate", "--range", "main"]
    command += ["--profile", "legacy", "--format", "json"]
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=repo, capture_output=True, check=False)
    seconds = time.perf_counter() - start
    count = completed.stdout.count(b'"kind":')
    print(
        f"  whole process, legacy {count / seconds:6.0f} versions/s"
        f"   ({count} in {seconds:.2f} s, `build-watcher validate --range main`)"
    )


def check_jsonschema(
    versions: list[tuple[str, bytes]], scratch: Path, step: int
) -> None:
    groups: dict[str, list[Path]] = defaultdict(list)
    for index, (path, data) in enumerate(versions):
        kind = kind_of(path)
        if kind is None or index % step:
            continue
        file = scratch / "versions" / kind.value / f"{index}.json"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)
        groups[kind.schema_file].append(file)
    start = time.perf_counter()
    for schema, files in groups.items():
        command = [
            str(BIN / "check-jsonschema"),
            "--schemafile",
            str(ROOT / "schemas" / schema),
        ]
        subprocess.run([*command, *map(str, files)], capture_output=True, check=False)
    seconds = time.perf_counter() - start
    count = sum(map(len, groups.values()))
    sampled = f", every {step}th version" if step > 1 else ""
    print(
        f"  check-jsonschema       {count / seconds:6.0f} versions/s"
        f"   ({count} in {seconds:.2f} s, {len(groups)} processes{sampled})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=BUNDLE)
    parser.add_argument("--sample", type=int, default=1)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="validate-corpus-"))
    try:
        repo = clone(args.bundle, scratch)
        versions = distinct_versions(repo)
        with_schema = [(p, d) for p, d in versions if kind_of(p) is not None]
        print(f"{len(versions)} distinct versions, {len(with_schema)} with a schema")
        in_process(versions, Profile.STRICT)
        in_process(versions, Profile.LEGACY)
        whole_process(repo)
        print("versions with a schema only:")
        ours = in_process(with_schema, Profile.STRICT)
        check_jsonschema(versions, scratch, args.sample)
        print(f"  (ours in process, strict: {ours:.2f} s for the same versions)")
    finally:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
