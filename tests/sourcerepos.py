"""Small real source repositories for build tests: a C program, a Debian package."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Fleet, git
from watcher.documents import dump_document
from watcher.layout import BUILD_CONFIG_PATH

HELLO_C = """#include <stdio.h>

int main(void) {
    puts("hello from a build-watcher build");
    return 0;
}
"""

MAKEFILE = """hello: hello.c
\tgcc -O2 -o hello hello.c

install: hello
\tmkdir -p $(DESTDIR)
\tcp hello $(DESTDIR)/hello

slow:
\tsleep 3
"""

DEBIAN_FILES = {
    "debian/control": """Source: watcher-hello
Section: misc
Priority: optional
Maintainer: Test Person <person@example.invalid>
Build-Depends: debhelper-compat (= 13)
Standards-Version: 4.6.2
Rules-Requires-Root: no

Package: watcher-hello
Architecture: all
Description: minimal package built by the build-watcher tests
 Installs one text file.
""",
    "debian/changelog": """watcher-hello (1.0) unstable; urgency=medium

  * First release.

 -- Test Person <person@example.invalid>  Mon, 03 Nov 2025 12:00:00 +0000
""",
    "debian/rules": "#!/usr/bin/make -f\n%:\n\tdh $@\n",
    "debian/source/format": "3.0 (native)\n",
    "debian/install": "hello.txt usr/share/watcher-hello/\n",
    "hello.txt": "hello from a Debian package built by build-watcher\n",
}


def commit_files(repo: Path, files: dict[str, str], message: str) -> str:
    """Write `files` into `repo`, commit them, and return the new commit."""
    for name, text in files.items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    if (repo / "debian" / "rules").exists():
        (repo / "debian" / "rules").chmod(0o755)
    git("add", "-A", cwd=repo)
    git("commit", "--quiet", "-m", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo).strip()


def make_source_repo(path: Path, files: dict[str, str]) -> Path:
    """A git repository at `path` whose main branch holds `files` in one commit."""
    git("init", "--quiet", "--initial-branch=main", str(path), cwd=path.parent)
    commit_files(path, files, "Add the source")
    return path


def c_program_repo(path: Path) -> Path:
    return make_source_repo(path, {"hello.c": HELLO_C, "Makefile": MAKEFILE})


def debian_package_repo(path: Path) -> Path:
    return make_source_repo(path, DEBIAN_FILES)


def build_config_for(repository: Path) -> dict[str, object]:
    """A shared build configuration whose source is the local `repository`."""
    return {
        "cloudstack": {"branch": "main", "repository": repository.as_uri()},
        "build": {"maven_opts": "-Xmx1g", "profiles": [], "skip_tests": True},
    }


def point_fleet_at(fleet: Fleet, source: Path) -> None:
    """Make the fleet's shared build configuration build the local `source`."""
    admin = fleet.checkouts.get("admin") or fleet.clone("admin")
    git("pull", "--quiet", "--ff-only", "origin", "main", cwd=admin)
    (admin / BUILD_CONFIG_PATH).write_bytes(dump_document(build_config_for(source)))
    git("commit", "--quiet", "-am", "Build the local project", cwd=admin)
    git("push", "--quiet", "origin", "main", cwd=admin)
