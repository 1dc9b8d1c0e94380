from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from watcher.config import Config, JobType
from watcher.errors import WatcherError
from watcher.jobinputs import JobInputs
from watcher.recipes import (
    BuildSettings,
    build_settings,
    maven_command,
    recipe_for,
    repository_problem,
    runnable_types,
)

SEED_BUILD_CONFIG = {
    "cloudstack": {
        "version": "4.21.0.0",
        "branch": "ExternalNew",
        "repository": "https://github.com/apache/cloudstack.git",
    },
    "build": {
        "maven_opts": "-Xms2g -Xmx12g -XX:+UseG1GC",
        "profiles": ["systemvm", "developer"],
        "skip_tests": True,
    },
}


def config(tmp_path: Path, **job_types: JobType) -> Config:
    return Config(
        repo=tmp_path, node="build1", state_dir=tmp_path / "state", job_types=job_types
    )


def inputs(job_type: str, **fields: object) -> JobInputs:
    return JobInputs(job_id="job_1", job_type=job_type, **fields)  # type: ignore[arg-type]


def test_the_seed_build_config_gives_the_cloudstack_maven_build(tmp_path: Path) -> None:
    recipe = recipe_for(
        inputs("build", branch="ExternalNew"), config(tmp_path), SEED_BUILD_CONFIG
    )
    assert recipe.command == (
        "mvn",
        "-B",
        "-T",
        "1C",
        "-Psystemvm,developer",
        "-DskipTests",
        "clean",
        "install",
    )
    assert recipe.env == {"MAVEN_OPTS": "-Xms2g -Xmx12g -XX:+UseG1GC"}
    assert recipe.source is not None
    assert recipe.source.repository == "https://github.com/apache/cloudstack.git"
    assert recipe.paths.source == tmp_path / "state" / "workspaces" / "job_1" / "source"


def test_tests_run_when_skip_tests_is_false() -> None:
    command = maven_command(BuildSettings(profiles=("developer",), skip_tests=False))
    assert "-DskipTests" not in command
    assert "-Pdeveloper" in command


def test_a_profile_that_is_not_a_plain_name_is_refused() -> None:
    with pytest.raises(WatcherError, match="profiles"):
        maven_command(BuildSettings(profiles=("dev -Dx=1",)))


def test_package_runs_dpkg_buildpackage_and_collects_debs(tmp_path: Path) -> None:
    recipe = recipe_for(inputs("package"), config(tmp_path), SEED_BUILD_CONFIG)
    assert recipe.command == ("dpkg-buildpackage", "-uc", "-us")
    assert recipe.artifact_patterns == ("*.deb",)
    assert recipe.source is not None and recipe.source.branch == "ExternalNew"


def test_placeholders_fill_whole_arguments_without_splitting(tmp_path: Path) -> None:
    make = JobType("make", ("make", "-C", "{workspace}", "BRANCH={branch}", "{job_id}"))
    recipe = recipe_for(inputs("make", branch="a/b"), config(tmp_path, make=make), {})
    assert recipe.command == (
        "make",
        "-C",
        str(recipe.paths.source),
        "BRANCH=a/b",
        "job_1",
    )


def test_an_unknown_placeholder_is_a_configuration_error(tmp_path: Path) -> None:
    make = JobType("make", ("make", "{home}"))
    with pytest.raises(WatcherError, match="unknown placeholder"):
        recipe_for(inputs("make"), config(tmp_path, make=make), {})


def test_a_placeholder_the_job_lacks_is_refused(tmp_path: Path) -> None:
    make = JobType("make", ("make", "COMMIT={commit}"))
    with pytest.raises(WatcherError, match="no commit"):
        recipe_for(inputs("make"), config(tmp_path, make=make), {})


def test_configured_types_fetch_only_when_the_job_names_a_revision(
    tmp_path: Path,
) -> None:
    cfg = config(tmp_path, make=JobType("make", ("make",)))
    assert recipe_for(inputs("make"), cfg, SEED_BUILD_CONFIG).source is None
    with_branch = recipe_for(inputs("make", branch="main"), cfg, SEED_BUILD_CONFIG)
    assert with_branch.source is not None
    assert recipe_for(inputs("make", branch="main"), cfg, {}).source is None


def test_timeout_comes_from_the_job_then_the_type_then_the_server(
    tmp_path: Path,
) -> None:
    cfg = config(tmp_path, make=JobType("make", ("make",), timeout=30.0))
    assert recipe_for(inputs("make", timeout=5.0), cfg, {}).timeout == 5.0
    assert recipe_for(inputs("make"), cfg, {}).timeout == 30.0
    assert (
        recipe_for(inputs("build"), cfg, SEED_BUILD_CONFIG).timeout == cfg.build_timeout
    )


def test_test_and_deploy_have_no_default(tmp_path: Path) -> None:
    for job_type in ("test", "deploy"):
        with pytest.raises(WatcherError, match="no command"):
            recipe_for(inputs(job_type), config(tmp_path), SEED_BUILD_CONFIG)


def test_runnable_types_are_the_configured_ones_and_the_defaults_this_host_has(
    tmp_path: Path,
) -> None:
    cfg = config(tmp_path, make=JobType("make", ("make",)), test=JobType("test"))
    found = runnable_types(cfg, SEED_BUILD_CONFIG)
    assert "make" in found
    assert "test" not in found
    assert "deploy" not in found
    assert ("build" in found) == (shutil.which("mvn") is not None)
    assert ("package" in found) == (shutil.which("dpkg-buildpackage") is not None)


def test_without_a_source_repository_no_default_is_runnable(tmp_path: Path) -> None:
    cfg = config(tmp_path, make=JobType("make", ("make",)))
    assert runnable_types(cfg, {"build": {}}) == frozenset({"make"})
    assert runnable_types(cfg, None) == frozenset({"make"})


@pytest.mark.parametrize(
    "url", ["ext::sh -c touch% /tmp/owned", "--upload-pack=touch", "fd::17", "a\nb"]
)
def test_repositories_that_would_run_commands_are_refused(url: str) -> None:
    assert repository_problem(url) is not None


@pytest.mark.parametrize(
    "url",
    ["https://github.com/apache/cloudstack.git", "git@host:cloudstack.git", "/srv/x"],
)
def test_ordinary_repositories_pass(url: str) -> None:
    assert repository_problem(url) is None


def test_legacy_build_configs_are_read_with_defaults() -> None:
    settings = build_settings({"cloudstack": {"repository": 5}, "build": "x"})
    assert settings == BuildSettings()


def test_doubled_braces_are_literal_and_code_braces_are_left_alone(
    tmp_path: Path,
) -> None:
    script = JobType("script", ("python3", "-c", "print(f'{len([])}', '{{job_id}}')"))
    recipe = recipe_for(inputs("script"), config(tmp_path, script=script), {})
    assert recipe.command[2] == "print(f'{len([])}', '{job_id}')"
