"""Configuration: each value checked once; every refusal names where it came from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Fleet, checkout_at
from watcher.config import load_config
from watcher.errors import EXIT_USAGE, UsageError


@pytest.fixture(autouse=True)
def checkout(tmp_path: Path) -> Path:
    """`tmp_path` as a checkout: commands refuse a directory that is none."""
    return checkout_at(tmp_path)


def test_a_directory_that_is_no_checkout_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()

    with pytest.raises(UsageError, match="is not a git checkout"):
        load_config(str(plain), "build1", environ={})


def test_a_bare_repository_is_refused_as_a_checkout(fleet: Fleet) -> None:
    with pytest.raises(UsageError, match="is a bare repository"):
        load_config(str(fleet.remote), "build1", environ={})


def refusal(
    tmp_path: Path,
    toml: str = "",
    node: str | None = None,
    environ: dict[str, str] | None = None,
) -> UsageError:
    """The error loading the checkout `tmp_path` with this config file gives."""
    config_file = tmp_path / "config.toml"
    config_file.write_text(toml, encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        load_config(str(tmp_path), node, str(config_file), environ=environ or {})
    return caught.value


def test_an_unknown_log_level_in_the_file_is_refused_listing_the_levels(
    tmp_path: Path,
) -> None:
    error = refusal(tmp_path, 'log_level = "loud"\n')

    assert error.exit_code == EXIT_USAGE
    assert f"{tmp_path / 'config.toml'}: `log_level` must be one of" in error.message
    assert "found 'loud'" in error.message
    for level in ("DEBUG", "INFO", "WARNING", "ERROR"):
        assert level in error.message


def test_an_unknown_log_level_in_the_environment_names_the_variable(
    tmp_path: Path,
) -> None:
    error = refusal(tmp_path, environ={"BUILD_WATCHER_LOG_LEVEL": "loud"})

    assert error.message.startswith("BUILD_WATCHER_LOG_LEVEL must be one of")


def test_watch_with_an_unknown_log_level_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    (tmp_path / ".build-watcher.toml").write_text('log_level = "loud"\n')
    command = [sys.executable, "-m", "watcher", "--repo", str(tmp_path), "watch"]

    done = subprocess.run(command, capture_output=True, text=True, check=False)

    assert done.returncode == EXIT_USAGE, done.stderr
    assert "found 'loud'" in done.stderr and "internal error" not in done.stderr


def test_an_environment_setting_is_named_by_its_variable(tmp_path: Path) -> None:
    error = refusal(tmp_path, environ={"BUILD_WATCHER_CONCURRENCY": "0"})

    assert error.message == "BUILD_WATCHER_CONCURRENCY must be greater than 0, found 0"


def test_a_repo_that_does_not_exist_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent"

    with pytest.raises(UsageError) as caught:
        load_config(str(missing), environ={})

    assert caught.value.message == f"--repo {missing}: no such directory"


def test_a_repo_that_is_a_file_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    file = tmp_path / "somefile"
    file.write_text("")

    with pytest.raises(UsageError) as flag:
        load_config(str(file), environ={})
    with pytest.raises(UsageError) as variable:
        load_config(environ={"BUILD_WATCHER_REPO": str(file)})

    assert flag.value.message == f"--repo {file}: is not a directory"
    assert variable.value.message == f"BUILD_WATCHER_REPO={file}: is not a directory"


@pytest.mark.parametrize(
    ("given_by", "source"),
    [
        ("flag", "the flag --node"),
        ("environment", "the environment variable BUILD_WATCHER_NODE"),
        ("file", "config.toml: `node`"),
        ("identity", ".build_server_id"),
    ],
)
def test_an_unusable_server_id_names_the_source_it_came_from(
    tmp_path: Path, given_by: str, source: str
) -> None:
    identity = "bad id" if given_by == "identity" else "build1"
    (tmp_path / ".build_server_id").write_text(identity + "\n")

    error = refusal(
        tmp_path,
        'node = "bad id"\n' if given_by == "file" else 'remote = "origin"\n',
        node="bad id" if given_by == "flag" else None,
        environ={"BUILD_WATCHER_NODE": "bad id"} if given_by == "environment" else {},
    )

    assert error.message.startswith("server id 'bad id' is not usable (from ")
    assert error.message.endswith(f"{source})")


def test_from_a_subdirectory_the_repo_is_the_top_of_the_checkout(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = fleet.clone("build1")
    monkeypatch.chdir(checkout / "shared")

    config = load_config(environ={})

    assert config.repo == checkout.resolve()
    assert config.node == "build1"
