from __future__ import annotations

import pytest

from watcher.jobinputs import (
    InvalidJobError,
    check_job_inputs,
    is_plain_name,
    job_input_problems,
)


def job(**fields: object) -> dict[str, object]:
    return {"id": "job_01J0000000000000000000000", "type": "build", **fields}


def test_a_well_formed_job_passes_with_its_fields() -> None:
    inputs = check_job_inputs(
        job(branch="ExternalNew", commit="D8E22AB0AF", timeout=60, attempt=2)
    )
    assert inputs.branch == "ExternalNew"
    assert inputs.commit == "d8e22ab0af"
    assert inputs.timeout == 60.0
    assert inputs.attempt == 2


def test_branch_and_commit_are_optional() -> None:
    assert check_job_inputs(job()).branch is None


@pytest.mark.parametrize(
    "branch",
    [
        "x; touch /tmp/owned",
        "--upload-pack=touch /tmp/owned",
        "-b",
        "feature..x",
        "a b",
        "refs/heads/x.lock",
        "$(touch /tmp/owned)",
        "x\ny",
        "",
        42,
    ],
)
def test_unsafe_branches_are_refused(branch: object) -> None:
    problems = job_input_problems(job(branch=branch))
    assert len(problems) == 1
    assert "branch" in problems[0]


@pytest.mark.parametrize("branch", ["main", "ExternalNew", "release/4.21", "fix-1.2_x"])
def test_ordinary_branches_pass(branch: str) -> None:
    assert job_input_problems(job(branch=branch)) == []


@pytest.mark.parametrize(
    "commit",
    ["abc123", "g" * 40, "a" * 41, "d8e22ab0af; rm -rf /", "-1234567", 1234567],
)
def test_commits_must_be_seven_to_forty_hex_digits(commit: object) -> None:
    assert job_input_problems(job(commit=commit)) == [
        f"commit must be 7 to 40 hex digits, found {commit!r}"
    ]


@pytest.mark.parametrize(
    "job_id", ["../etc", "a/b", ".hidden", "-x", "", None, "a" * 200]
)
def test_job_ids_must_be_safe_file_names(job_id: object) -> None:
    assert not is_plain_name(job_id)
    assert "id" in job_input_problems(job(id=job_id))[0]


@pytest.mark.parametrize("timeout", [0, -5, "60", True, float("nan")])
def test_a_timeout_must_be_a_positive_number(timeout: object) -> None:
    assert "timeout" in job_input_problems(job(timeout=timeout))[0]


def test_every_problem_is_named_in_the_error() -> None:
    with pytest.raises(InvalidJobError) as caught:
        check_job_inputs(job(branch="-x", commit="zz"))
    assert len(caught.value.reasons) == 2
    assert "starts with '-'" in caught.value.message
    assert "hex digits" in caught.value.message
