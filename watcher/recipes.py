"""What a job type runs: an argument list, its environment, its source and artifacts.

A configured job type (`[job_types.NAME] command = [...]`) is an argument list whose
items may hold these placeholders, each replaced inside its own argument and never
split or handed to a shell:

    {branch}     the job's branch (the build configuration's branch when absent)
    {commit}     the job's commit as submitted
    {job_id}     the job's id
    {workspace}  the job's source tree, where the command runs
    {artifacts}  an empty directory; every file the command leaves there is recorded

`{{` and `}}` stand for literal braces; any other brace is left as it is.

Each job gets its own directory `<workspace_dir>/<job_id>/`, holding the source tree
(`source/`, the `{workspace}`), the artifact directory (`artifacts/`) and whatever a
build writes beside its source (`dpkg-buildpackage` puts packages there).

The source is fetched (`git fetch --depth 1` of the commit, else of the branch) from
`cloudstack.repository` in `shared/build_config.json` for the built-in types always,
and for a configured type when the job names a branch or a commit; otherwise a
configured type starts in an empty workspace.

Built-in CloudStack defaults: `build` runs Maven with the configured profiles and
`MAVEN_OPTS`; `package` runs `dpkg-buildpackage -uc -us` and records the `.deb`
files. `test` and `deploy` have no default: a server runs them only once configured.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watcher.config import Config
from watcher.errors import WatcherError
from watcher.jobinputs import JobInputs

PLACEHOLDERS = ("branch", "commit", "job_id", "workspace", "artifacts")
DEFAULT_TOOLS = {"build": "mvn", "package": "dpkg-buildpackage"}
DEFAULT_BRANCH = "main"
# The artifacts the seed recorded for a CloudStack build (the UI and server jars and
# the engine war); the war's module is matched loosely because only its name is known.
BUILD_ARTIFACTS = (
    "source/client/target/cloud-client-ui-*.jar",
    "source/server/target/cloud-server-*.jar",
    "source/*/target/engine.war",
)
PACKAGE_ARTIFACTS = ("*.deb",)
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PROFILE = re.compile(r"^[!?]?[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class BuildSettings:
    """The shared build settings from `shared/build_config.json`, legacy-tolerant."""

    repository: str | None = None
    branch: str = DEFAULT_BRANCH
    profiles: tuple[str, ...] = ()
    maven_opts: str = ""
    skip_tests: bool = True


@dataclass(frozen=True)
class JobPaths:
    """Where one job's files live on this server."""

    root: Path

    @property
    def source(self) -> Path:
        return self.root / "source"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"


@dataclass(frozen=True)
class SourceSpec:
    """What to fetch into the workspace: a repository at a commit or a branch."""

    repository: str
    branch: str
    commit: str | None = None


@dataclass(frozen=True)
class Recipe:
    """Everything needed to run one job, decided before anything runs."""

    job_type: str
    command: tuple[str, ...]
    paths: JobPaths
    timeout: float
    env: Mapping[str, str] = field(default_factory=dict)
    source: SourceSpec | None = None
    artifact_patterns: tuple[str, ...] = ("artifacts/**/*",)


def build_settings(build_config: Mapping[str, Any] | None) -> BuildSettings:
    """Read the settings, keeping defaults for what a legacy file leaves out."""
    cloudstack = _table(build_config, "cloudstack")
    build = _table(build_config, "build")
    repository = cloudstack.get("repository")
    branch = cloudstack.get("branch")
    profiles = build.get("profiles")
    return BuildSettings(
        repository=repository if isinstance(repository, str) and repository else None,
        branch=branch if isinstance(branch, str) and branch else DEFAULT_BRANCH,
        profiles=tuple(profiles) if isinstance(profiles, list) else (),
        maven_opts=str(build.get("maven_opts") or ""),
        skip_tests=build.get("skip_tests") is not False,
    )


def _table(document: Mapping[str, Any] | None, key: str) -> Mapping[str, Any]:
    value = (document or {}).get(key)
    return value if isinstance(value, Mapping) else {}


def runnable_types(
    config: Config, build_config: Mapping[str, Any] | None
) -> frozenset[str]:
    """Job types this server can run: configured commands, and the defaults it has."""
    configured = {name for name, spec in config.job_types.items() if spec.command}
    settings = build_settings(build_config)
    if settings.repository is None or repository_problem(settings.repository):
        return frozenset(configured)
    defaults = {kind for kind, tool in DEFAULT_TOOLS.items() if shutil.which(tool)}
    return frozenset(configured | defaults)


def job_paths(config: Config, job_id: str) -> JobPaths:
    return JobPaths(config.workspace_path / job_id)


def recipe_for(
    inputs: JobInputs, config: Config, build_config: Mapping[str, Any] | None
) -> Recipe:
    """How to run this job here, or a WatcherError saying why it cannot run."""
    settings = build_settings(build_config)
    spec = config.job_types.get(inputs.job_type)
    paths = job_paths(config, inputs.job_id)
    timeout = _timeout(inputs, config)
    if spec is not None and spec.command:
        return _configured_recipe(inputs, spec.command, settings, paths, timeout)
    if inputs.job_type in DEFAULT_TOOLS:
        return _default_recipe(inputs, settings, paths, timeout)
    raise WatcherError(
        f"job {inputs.job_id}: this server has no command for job type "
        f"{inputs.job_type!r}",
        hint=f"add [job_types.{inputs.job_type}] command = [...] to the configuration",
    )


def _timeout(inputs: JobInputs, config: Config) -> float:
    spec = config.job_types.get(inputs.job_type)
    if inputs.timeout is not None:
        return inputs.timeout
    if spec is not None and spec.timeout is not None:
        return spec.timeout
    return config.build_timeout


def _configured_recipe(
    inputs: JobInputs,
    command: tuple[str, ...],
    settings: BuildSettings,
    paths: JobPaths,
    timeout: float,
) -> Recipe:
    wants_source = inputs.branch is not None or inputs.commit is not None
    source = _source(inputs, settings) if wants_source and settings.repository else None
    values = _placeholder_values(inputs, settings, paths)
    arguments = tuple(_substitute(item, values, inputs) for item in command)
    return Recipe(inputs.job_type, arguments, paths, timeout, source=source)


def _default_recipe(
    inputs: JobInputs, settings: BuildSettings, paths: JobPaths, timeout: float
) -> Recipe:
    source = _source(inputs, settings)
    if inputs.job_type == "package":
        command = ("dpkg-buildpackage", "-uc", "-us")
        return Recipe("package", command, paths, timeout, {}, source, PACKAGE_ARTIFACTS)
    env = {"MAVEN_OPTS": settings.maven_opts} if settings.maven_opts else {}
    return Recipe(
        "build", maven_command(settings), paths, timeout, env, source, BUILD_ARTIFACTS
    )


def maven_command(settings: BuildSettings) -> tuple[str, ...]:
    """The CloudStack build; batch mode so it never prompts or colours the log."""
    bad = [profile for profile in settings.profiles if not _is_profile(profile)]
    if bad:
        raise WatcherError(
            f"shared/build_config.json: build.profiles holds unusable names {bad!r}",
            hint="profiles are plain names such as 'developer' or 'systemvm'",
        )
    command = ["mvn", "-B", "-T", "1C"]
    if settings.profiles:
        command.append("-P" + ",".join(settings.profiles))
    if settings.skip_tests:
        command.append("-DskipTests")
    return (*command, "clean", "install")


def _is_profile(profile: object) -> bool:
    return isinstance(profile, str) and bool(_PROFILE.match(profile))


def _source(inputs: JobInputs, settings: BuildSettings) -> SourceSpec:
    if settings.repository is None:
        raise WatcherError(
            f"job {inputs.job_id}: no source repository to fetch",
            hint="set cloudstack.repository in shared/build_config.json",
        )
    problem = repository_problem(settings.repository)
    if problem:
        raise WatcherError(
            f"shared/build_config.json: cloudstack.repository {problem}",
            hint="use an https://, ssh://, git:// or file:// URL, or host:path",
        )
    branch = inputs.branch or settings.branch
    return SourceSpec(settings.repository, branch, inputs.commit)


def repository_problem(url: str) -> str | None:
    """Why `url` must not be handed to git, or None.

    git's `ext::` and other `helper::` transports run commands, and a URL starting
    with '-' reads as an option; the fetch itself is also limited to plain protocols
    (see build.py), so this check only gives the clearer message.
    """
    if url.startswith("-"):
        return f"{url!r} starts with '-' and would be read as an option"
    if "::" in url:
        return f"{url!r} names a remote helper transport, which runs commands"
    if any(ord(character) < 32 for character in url):
        return f"{url!r} holds control characters"
    return None


def _placeholder_values(
    inputs: JobInputs, settings: BuildSettings, paths: JobPaths
) -> dict[str, str | None]:
    return {
        "branch": inputs.branch or settings.branch,
        "commit": inputs.commit,
        "job_id": inputs.job_id,
        "workspace": str(paths.source),
        "artifacts": str(paths.artifacts),
    }


def _substitute(item: str, values: Mapping[str, str | None], inputs: JobInputs) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)[0]
        if name not in values:
            raise WatcherError(
                f"job type {inputs.job_type!r}: unknown placeholder {{{name}}} "
                f"in {item!r}",
                hint="known placeholders: "
                + ", ".join(f"{{{known}}}" for known in PLACEHOLDERS),
            )
        value = values[name]
        if value is None:
            raise WatcherError(
                f"job {inputs.job_id}: the {inputs.job_type!r} command needs "
                f"{{{name}}} but the job has no {name}",
                hint=f"submit the job with --{name}",
            )
        return value

    return _PLACEHOLDER.sub(replace, item)
