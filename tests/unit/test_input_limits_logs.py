"""The logging policy: the RunPod SDK's level, the content switch, content-free error and job lines."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from runpod.serverless.modules.rp_logger import RunPodLogger

from handler import logs
from handler.errors import error_output
from shared.logs import content_log
from tests.conftest import make_settings

SECRET = "violet-harbour-8841"


@pytest.fixture(autouse=True)
def restore_levels(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("RUNPOD_LOG_LEVEL", raising=False)  # configure() sets it; restored after each test
    sdk = RunPodLogger()
    before = (sdk.level, content_log.level)
    yield
    sdk.level, _ = before
    content_log.setLevel(before[1])


@pytest.mark.parametrize(
    ("level", "content", "expected"),
    [
        ("INFO", False, "INFO"),
        ("DEBUG", False, "INFO"),
        ("TRACE", False, "INFO"),
        ("ERROR", False, "ERROR"),
        ("DEBUG", True, "DEBUG"),
    ],
)
def test_the_sdk_logs_outputs_only_with_the_content_switch(level: str, content: bool, expected: str) -> None:
    logs.configure(make_settings(runpod_log_level=level, debug_log_content=content), argv=["handler"])
    assert RunPodLogger().level == expected
    assert content_log.isEnabledFor(logging.DEBUG) is content


def test_the_default_runpod_level_is_info() -> None:
    assert make_settings().runpod_log_level == "INFO"
    assert make_settings().debug_log_content is False
    assert make_settings(runpod_log_level="debug").runpod_log_level == "DEBUG"  # as case-blind as the SDK


@pytest.mark.parametrize(
    ("argv", "content", "expected"),
    [
        (["handler", "--rp_log_level", "DEBUG"], False, ["handler", "--rp_log_level", "INFO"]),
        (["handler", "--rp_log_level=trace"], False, ["handler", "--rp_log_level=INFO"]),
        (["handler", "--rp_log_level", "WARN"], False, ["handler", "--rp_log_level", "WARN"]),
        (["handler", "--rp_log_level", "DEBUG"], True, ["handler", "--rp_log_level", "DEBUG"]),
    ],
)
def test_the_sdk_flag_obeys_the_same_rule(argv: list[str], content: bool, expected: list[str]) -> None:
    logs.configure(make_settings(debug_log_content=content), argv=argv)
    assert argv == expected


def test_an_unexpected_error_is_logged_without_its_message(caplog: pytest.LogCaptureFixture) -> None:
    def fail() -> None:
        raise KeyError(f"the user wrote {SECRET}")

    try:
        fail()
    except KeyError as exc:
        with caplog.at_level(logging.DEBUG):
            content_log.setLevel(logging.CRITICAL + 1)
            out = error_output(exc)
    assert out["error_code"] == "internal_error" and SECRET not in out["error"]
    assert "KeyError" in caplog.text and "in fail" in caplog.text  # the type and the stack
    assert SECRET not in caplog.text


def test_the_job_line_has_id_code_time_and_sizes_and_no_text(caplog: pytest.LogCaptureFixture) -> None:
    job: dict[str, Any] = {"id": "job-1", "input": {"action": "chat", "message": SECRET}}
    with caplog.at_level(logging.INFO, logger="handler"):
        logs.job_done(job, logs.action_name(job["input"]), {"success": True, "response": SECRET}, 0.0)
        odd = {"id": f"x\n{SECRET}", "input": {"action": SECRET}}
        failed = {"success": False, "error_code": "unknown_action", "error": SECRET}
        logs.job_done(odd, logs.action_name(odd["input"]), failed, 0.0)
    first, second = caplog.messages
    assert first.startswith("job job-1 action=chat outcome=ok ") and "input=37 output=36" in first
    assert second.startswith("job - action=- outcome=unknown_action ")
    assert SECRET not in caplog.text
