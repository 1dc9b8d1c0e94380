"""Configured handler commands run as real processes, never through a shell."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from loguru import logger

from watcher.commandhandler import (
    CommandHandler,
    build_handlers,
    check_handlers,
    expand,
)
from watcher.config import Config, HandlerCommand
from watcher.errors import UsageError, WatcherError
from watcher.events import Event, EventKind

RECORDER = (
    "import json, os, sys; "
    "out = {'stdin': json.load(sys.stdin), 'argv': sys.argv[1:], 'cwd': os.getcwd(), "
    "'env': {k: v for k, v in os.environ.items() if k.startswith('BUILD_WATCHER_')}}; "
    "open(os.environ['RECORD_TO'], 'w').write(json.dumps(out)); print('recorded')"
)


def an_event(subject: str = "job_01HX") -> Event:
    return Event(
        kind=EventKind.JOB_QUEUED,
        id="evt_0123",
        commit="a" * 40,
        path="coordination/jobs.json",
        subject=subject,
        record={"id": subject, "status": "queued"},
        previous=None,
        actor="build2",
    )


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(repo=tmp_path, node="build1", kill_grace=1.0)


@pytest.fixture
def logged() -> Iterator[list[tuple[str, str, dict[str, object]]]]:
    seen: list[tuple[str, str, dict[str, object]]] = []

    def sink(message: object) -> None:
        record = message.record  # type: ignore[attr-defined]
        seen.append((record["level"].name, record["message"], record["extra"]))

    handle = logger.add(sink, level="INFO")
    yield seen
    logger.remove(handle)


def handler_for(config: Config, *command: str, timeout: float = 30) -> CommandHandler:
    return CommandHandler(HandlerCommand("job.queued", command, timeout), config)


def test_the_event_arrives_on_stdin_with_kind_and_node_in_the_environment(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "record.json"
    monkeypatch.setenv("RECORD_TO", str(record))
    handler = handler_for(config, sys.executable, "-c", RECORDER, "{subject}", "{kind}")

    handler(an_event())

    seen = json.loads(record.read_text())
    assert seen["stdin"]["subject"] == "job_01HX"
    assert seen["stdin"]["kind"] == "job.queued"
    assert seen["argv"] == ["job_01HX", "job.queued"]
    assert seen["cwd"] == str(tmp_path)
    assert seen["env"]["BUILD_WATCHER_EVENT"] == "job.queued"
    assert seen["env"]["BUILD_WATCHER_NODE"] == "build1"
    assert seen["env"]["BUILD_WATCHER_EVENT_ID"] == "evt_0123"


def test_arguments_never_pass_through_a_shell(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "record.json"
    monkeypatch.setenv("RECORD_TO", str(record))
    subject = "job_1;touch pwned$(touch pwned2)"
    handler = handler_for(config, sys.executable, "-c", RECORDER, "{subject}")

    handler(an_event(subject))

    assert json.loads(record.read_text())["argv"] == [subject]
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "pwned2").exists()


def test_a_value_that_would_read_as_an_option_is_refused(
    config: Config, tmp_path: Path, logged: list[tuple[str, str, dict[str, object]]]
) -> None:
    marker = tmp_path / "ran"
    handler = handler_for(config, "touch", str(marker), "{subject}")

    handler(an_event("--reference=/etc/shadow"))

    assert not marker.exists()
    assert any(level == "WARNING" and "unsafe" in text for level, text, _ in logged)


def test_placeholders_are_filled_and_other_braces_kept() -> None:
    values = {"subject": "job_1", "kind": "job.queued"}

    assert expand(["{'a': 1}", "id={subject}", "{kind}"], values) == [
        "{'a': 1}",
        "id=job_1",
        "job.queued",
    ]
    with pytest.raises(WatcherError, match="unsafe"):
        expand(["{subject}"], {"subject": "line\nbreak"})


def test_unknown_kinds_and_placeholders_are_configuration_errors() -> None:
    with pytest.raises(UsageError, match="not an event kind"):
        check_handlers([HandlerCommand("job.exploded", ("true",))], "config.toml")
    with pytest.raises(UsageError, match=r"\{body\}"):
        check_handlers([HandlerCommand("*", ("echo", "{body}"))], "config.toml")
    check_handlers([HandlerCommand("*", ("echo", "{subject}", "{'a': 1}"))], "c.toml")


def test_every_kind_handler_is_built_for_all_events(config: Config) -> None:
    config = Config(
        repo=config.repo, node="build1", handlers=(HandlerCommand("*", ("true",)),)
    )

    [(kind, handler)] = build_handlers(config)

    assert kind is None
    assert handler.name == "true"


def test_output_and_failure_are_logged(
    config: Config, logged: list[tuple[str, str, dict[str, object]]]
) -> None:
    script = "import sys; print('half done'); sys.exit(3)"
    handler = handler_for(config, sys.executable, "-c", script)

    handler(an_event())

    [(level, _text, extra)] = [entry for entry in logged if "handler" in entry[1]]
    assert level == "ERROR"
    assert extra["status"] == 3
    assert "half done" in str(extra["output"])
    assert extra["event"] == "evt_0123"


def test_a_command_past_its_timeout_is_stopped(
    config: Config, tmp_path: Path, logged: list[tuple[str, str, dict[str, object]]]
) -> None:
    pid_file = tmp_path / "pid"
    script = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
        "time.sleep(60)"
    )
    handler = handler_for(config, sys.executable, "-c", script, timeout=0.5)

    handler(an_event())

    assert not psutil.pid_exists(int(pid_file.read_text())) or (
        psutil.Process(int(pid_file.read_text())).status() == psutil.STATUS_ZOMBIE
    )
    assert any(level == "ERROR" and "timed out" in text for level, text, _ in logged)


def test_a_running_command_can_be_stopped_from_another_thread(
    config: Config, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    script = f"open({str(started)!r}, 'w').close(); import time; time.sleep(60)"
    handler = handler_for(config, sys.executable, "-c", script, timeout=120)
    runner = threading.Thread(target=handler, args=(an_event(),))
    runner.start()

    deadline = time.monotonic() + 10
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    handler.terminate()
    runner.join(timeout=10)

    assert not runner.is_alive()
