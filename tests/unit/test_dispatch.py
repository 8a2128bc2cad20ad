"""Dispatch, validation and the error mapper, on the fake engine."""

from __future__ import annotations

from typing import Any

import pytest

from handler.app import Worker
from tests.conftest import run
from tests.fakes.engine import FakeEngine

BAD_INPUTS: list[tuple[Any, str, str]] = [
    ("hello", "invalid_input", "input"),
    ([1, 2], "invalid_input", "input"),
    ({}, "invalid_input", "action"),
    ({"action": 5}, "invalid_input", "action"),
    ({"action": "dance"}, "unknown_action", "action"),
    ({"action": "chat"}, "invalid_input", "message"),
    ({"action": "chat", "message": ""}, "invalid_input", "message"),
    ({"action": "chat", "message": "   "}, "invalid_input", "message"),
    ({"action": "chat", "message": 42}, "invalid_input", "message"),
    ({"action": "chat", "message": "hi", "max_tokens": "5"}, "invalid_input", "max_tokens"),
    ({"action": "chat", "message": "hi", "max_tokens": 0}, "invalid_input", "max_tokens"),
    ({"action": "chat", "message": "hi", "max_tokens": 999999}, "invalid_input", "max_tokens"),
    ({"action": "chat", "message": "hi", "temperature": "hot"}, "invalid_input", "temperature"),
    ({"action": "chat", "message": "x" * 9000}, "invalid_input", "message"),
    ({"action": "chat", "message": "hi", "conversation_history": "no"}, "invalid_input", "conversation_history"),
    (
        {"action": "chat", "message": "hi", "conversation_history": [{"role": "wizard", "content": "x"}]},
        "invalid_input",
        "conversation_history.0.role",
    ),
    ({"action": "chat", "message": "hi", "context_type": "weird"}, "invalid_input", "context_type"),
    ({"action": "admin"}, "invalid_input", "command"),
    ({"action": "admin", "command": "reboot"}, "unknown_command", "command"),
    ({"action": "admin", "command": "cache_clear"}, "unauthorized", "admin_token"),
    ({"action": "admin", "command": "cache_clear", "admin_token": "nope"}, "unauthorized", "admin_token"),
    ({"action": "enhance"}, "invalid_input", "prompt"),
    ({"action": "enhance", "prompt": "cat", "job_type": "gif"}, "invalid_input", "job_type"),
    ({"action": "enhance", "prompt": "cat", "quality": "ultra"}, "invalid_input", "quality"),
    ({"action": "enhance", "prompt": "y" * 2001}, "invalid_input", "prompt"),
]


@pytest.mark.parametrize(("payload", "code", "field"), BAD_INPUTS)
def test_bad_input_fails_with_code_and_field(worker: Worker, payload: Any, code: str, field: str) -> None:
    out = run(worker, payload)
    assert out["success"] is False
    assert out["error_code"] == code
    assert out["field"] == field
    assert out["error"].startswith(f"{code}: ")
    assert f"(field: {field})" in out["error"]
    assert "Traceback" not in out["error"]


def test_worker_keeps_serving_after_every_bad_input(worker: Worker) -> None:
    for payload, _, _ in BAD_INPUTS:
        run(worker, payload)
    assert run(worker, {"action": "chat", "message": "still there?"})["success"] is True
    health = run(worker, {"action": "health"})
    assert health["jobs_failed"] == len(BAD_INPUTS)


def test_unexpected_exception_is_masked(make_worker: Any) -> None:
    engine = FakeEngine().enqueue(RuntimeError("secret /internal/path"))
    out = run(make_worker(engine), {"action": "chat", "message": "hi"})
    assert out["error_code"] == "internal_error"
    assert "secret" not in out["error"] and "/internal" not in out["error"]


def test_aliases_map_to_admin_commands(worker: Worker) -> None:
    for alias in ("health", "model_info", "memory_status", "enhancement_info"):
        out = run(worker, {"action": alias})
        assert out["success"] is True, alias
    assert run(worker, {"action": "model_info"})["model_path"] == "fake"


def test_cache_clear_with_token(worker: Worker) -> None:
    out = run(worker, {"action": "cache_clear", "admin_token": "test-admin-token"})
    assert out == {"success": True, "cache_cleared": 0, "cache_size": 0}


def test_health_separates_liveness_and_readiness(worker: Worker, fake: FakeEngine) -> None:
    fake.unload()
    out = run(worker, {"action": "health"})
    assert out["live"] is True and out["ready"] is False and out["status"] == "loading"


def test_warmup_loads_then_is_cheap(worker: Worker, fake: FakeEngine) -> None:
    fake.unload()
    first = run(worker, {"action": "warmup"})
    second = run(worker, {"action": "warmup"})
    assert first["warm"] is False and first["model_loaded"] is True
    assert second["warm"] is True
    assert len(fake.history) == 1  # only the first warmup generated
