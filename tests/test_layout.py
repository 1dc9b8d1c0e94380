from watcher.layout import DocumentKind, is_coordination_path, kind_of, server_ids


def test_kind_of_maps_every_document_path() -> None:
    assert kind_of("coordination/jobs.json") is DocumentKind.JOBS
    assert kind_of("build1/status.json") is DocumentKind.STATUS
    assert kind_of("build1/heartbeat.json") is DocumentKind.HEARTBEAT
    assert kind_of("coordination/archive/messages-2025-11.json") is (
        DocumentKind.MESSAGE_ARCHIVE
    )
    assert kind_of("coordination/message_stats.json") is None


def test_coordination_paths_include_files_without_a_schema() -> None:
    assert is_coordination_path("coordination/message_stats.json")
    assert is_coordination_path("build2/logs/manifest.json")
    assert not is_coordination_path("README.json")
    assert not is_coordination_path("build1/notes.txt")


def test_server_ids_come_from_status_or_heartbeat_files() -> None:
    paths = {"build1/status.json", "build2/heartbeat.json", "shared/x.json"}
    assert server_ids(paths) == ["build1", "build2"]
