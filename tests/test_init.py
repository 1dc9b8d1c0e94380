"""`build-watcher init` against real bare remotes, through the command line."""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from tests.conftest import Fleet, checkout_at, git
from watcher.config import Config, load_config
from watcher.configexample import NOT_SETTINGS, NOTES, TABLES, example_config
from watcher.layout import empty_documents
from watcher.main import main
from watcher.responder import choose_answer, compile_rules

SETTING_LINE = re.compile(r"^# ([a-z_]+) = (.*)$")


@pytest.fixture
def empty_remote(tmp_path: Path) -> str:
    remote = tmp_path / "empty.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote), cwd=tmp_path)
    return remote.as_uri()


def test_an_empty_remote_gets_the_layout_and_a_ready_checkout(
    tmp_path: Path, empty_remote: str, capsys: pytest.CaptureFixture[str]
) -> None:
    checkout = tmp_path / "build1"

    code = main(
        ["--repo", str(checkout), "--node", "build1", "init", "--remote", empty_remote]
    )

    assert code == 0
    assert (checkout / ".build_server_id").read_text() == "build1\n"
    for path in empty_documents():
        assert json.loads(git("show", f"origin/main:{path}", cwd=checkout))
    assert git("rev-parse", "HEAD", cwd=checkout) == git(
        "rev-parse", "origin/main", cwd=checkout
    )
    assert git("status", "--porcelain", cwd=checkout) == ""
    hook = checkout / ".git" / "hooks" / "post-merge"
    assert (
        os.access(hook, os.X_OK) and "build-watcher hook post-merge" in hook.read_text()
    )
    assert (checkout / ".build-watcher.toml").read_text() == example_config()
    assert git("symbolic-ref", "--short", "HEAD", cwd=checkout).strip() == "main"
    output = capsys.readouterr()
    assert "layout        created on origin/main" in output.out
    assert "branch        main, following refs/remotes/origin/main" in output.out
    assert "WARNING" not in output.err


def test_running_it_again_changes_nothing(
    tmp_path: Path, empty_remote: str, capsys: pytest.CaptureFixture[str]
) -> None:
    checkout = tmp_path / "build1"
    main(
        ["--repo", str(checkout), "--node", "build1", "init", "--remote", empty_remote]
    )
    log = git("log", "--format=%H", "origin/main", cwd=checkout)
    capsys.readouterr()

    assert main(["--repo", str(checkout), "init", "--format", "json"]) == 0

    steps = {step["step"]: step["done"] for step in json.loads(capsys.readouterr().out)}
    assert steps["layout"] == "already on origin/main"
    assert steps["config"].endswith("kept as it is")
    assert (
        git("ls-remote", empty_remote, "main", cwd=tmp_path).split()[0]
        == log.split()[0]
    )


def test_an_existing_checkout_of_a_fleet_is_only_given_identity_and_hooks(
    fleet: Fleet, tmp_path: Path
) -> None:
    checkout = tmp_path / "plain"
    git("clone", "--quiet", fleet.url, str(checkout), cwd=tmp_path)
    before = fleet.remote_log()

    assert (
        main(["--repo", str(checkout), "--node", "build7", "init", "--no-hooks"]) == 0
    )

    assert fleet.remote_log() == before
    assert not (checkout / ".git" / "hooks" / "pre-commit").exists()
    assert "/.build_server_id" in (checkout / ".git" / "info" / "exclude").read_text()


def test_without_a_server_id_it_says_how_to_give_one(
    tmp_path: Path, empty_remote: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--repo", str(tmp_path / "b"), "init", "--remote", empty_remote])

    assert code == 2
    assert "--node ID" in capsys.readouterr().err


def test_a_directory_that_is_no_checkout_needs_a_remote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--repo", str(tmp_path), "--node", "build1", "init"]) == 2
    assert "--remote URL" in capsys.readouterr().err


def test_an_origin_elsewhere_is_not_silently_changed(
    fleet: Fleet, empty_remote: str, capsys: pytest.CaptureFixture[str]
) -> None:
    checkout = fleet.clone("build1")

    assert main(["--repo", str(checkout), "init", "--remote", empty_remote]) == 2
    assert "remote set-url" in capsys.readouterr().err


def test_another_branch_is_created_and_configured(
    tmp_path: Path, empty_remote: str
) -> None:
    checkout = tmp_path / "build1"
    args = ["--repo", str(checkout), "--node", "build1", "init"]

    assert main([*args, "--remote", empty_remote, "--branch", "coordination-2"]) == 0

    assert load_config(str(checkout), None, None).branch == "coordination-2"
    head = git("symbolic-ref", "--short", "HEAD", cwd=checkout).strip()
    assert head == "coordination-2"
    assert git("status", "--porcelain", cwd=checkout) == ""
    assert git("ls-remote", empty_remote, "coordination-2", cwd=tmp_path).strip()


def test_the_example_covers_every_setting_with_its_default() -> None:
    text = example_config().removesuffix(TABLES)
    settings = {f.name for f in fields(Config)} - NOT_SETTINGS

    shown = {
        m.group(1) for line in text.splitlines() if (m := SETTING_LINE.match(line))
    }

    assert shown == settings
    assert set(NOTES) == settings


def test_uncommenting_the_example_gives_the_defaults(tmp_path: Path) -> None:
    skipped = {"node", "state_dir", "workspace_dir"}  # examples, not defaults
    lines = []
    for line in example_config().removesuffix(TABLES).splitlines():
        match = SETTING_LINE.match(line)
        if match and match.group(1) not in skipped:
            lines.append(f"{match.group(1)} = {match.group(2)}")
    config_file = tmp_path / "config.toml"
    config_file.write_text("\n".join(lines) + "\n")
    tomllib.loads(config_file.read_text())

    loaded = load_config(str(checkout_at(tmp_path)), "build1", str(config_file))
    defaults = Config(repo=tmp_path, node="build1")

    for setting in fields(Config):
        if setting.name not in NOT_SETTINGS:
            assert getattr(loaded, setting.name) == getattr(defaults, setting.name), (
                setting.name
            )


def test_the_example_tables_load_and_the_reply_rule_answers(tmp_path: Path) -> None:
    toml_line = re.compile(r"^# (\[.*\]|[a-z_]+ = .*)$")
    uncommented = [
        match.group(1)
        for line in TABLES.splitlines()
        if (match := toml_line.match(line))
    ]
    config_file = tmp_path / "config.toml"
    config_file.write_text("\n".join(uncommented) + "\n")

    loaded = load_config(str(checkout_at(tmp_path)), "build1", str(config_file))
    rules = compile_rules(loaded.reply_rules, loaded.source)
    asked = {"from": "build2", "to": "build1", "type": "request"}

    answer = choose_answer({**asked, "subject": "Status of build1"}, "build1", rules)
    assert answer is not None
    assert answer.text == "Busy building; see shared/health_dashboard.json"
    assert choose_answer({**asked, "subject": "deploy"}, "build1", rules) is None
    assert set(loaded.job_types) == {"build"}
    assert [handler.event for handler in loaded.handlers] == ["job.finished"]
