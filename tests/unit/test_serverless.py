"""Per-job handler choice for the RunPod SDK (handler/serverless.py): jobs that ask to stream get the
generator handler, every other job the plain one. The SDK's job runner is replaced by a recorder here;
the local-API tests (tests/e2e/test_streaming_api.py) run the real SDK."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from handler import serverless


@pytest.mark.parametrize(
    ("payload", "streams"),
    [
        ({"action": "chat", "message": "hi", "stream": True}, True),
        ({"action": "chat_unrestricted", "message": "hi", "stream": True}, True),
        ({"action": "chat", "message": "hi"}, False),
        ({"action": "chat", "message": "hi", "stream": "true"}, False),
        ({"action": "enhance", "prompt": "a cat", "stream": True}, False),
        ({"openai_route": "/v1/chat/completions", "openai_input": {"stream": True}}, True),
        ({"openai_route": "/v1/chat/completions", "openai_input": {"messages": []}}, False),
        ({"openai_route": "/v1/models"}, False),
        ("not an object", False),
    ],
)
def test_only_jobs_that_ask_to_stream_get_the_generator(payload: Any, streams: bool) -> None:
    assert serverless.wants_stream(payload) is streams


async def plain(job: dict[str, Any]) -> dict[str, Any]:
    return {"plain": job["input"]}


async def generator(job: dict[str, Any]) -> Any:
    yield {"streamed": job["input"]}


def test_the_queue_runner_hands_each_job_to_its_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, Any]] = []

    async def handle_job(session: Any, cfg: dict[str, Any], job: dict[str, Any]) -> None:
        seen.append((cfg["handler"].__name__, cfg["return_aggregate_stream"]))

    monkeypatch.setattr(serverless.rp_job, "handle_job", handle_job)
    cfg = serverless.config(plain, generator, 4, stream=True)
    scaler = serverless.JobScaler(cfg)
    assert cfg["concurrency_modifier"](1) == 4
    for payload in ({"action": "chat", "message": "hi"}, {"action": "chat", "message": "hi", "stream": True}):
        asyncio.run(scaler.jobs_handler(None, cfg, {"id": "j", "input": payload}))
    assert seen == [("run", True), ("generator", True)]  # "run": the plain handler as plain_handler wraps it


def test_streaming_off_has_only_the_plain_handler() -> None:
    cfg = serverless.config(plain, generator, 4, stream=False)
    assert serverless.for_job(cfg, {"action": "chat", "stream": True})["handler"] is cfg["handler"]


def test_a_plain_openai_failure_is_the_error_object_as_the_jobs_error_string() -> None:
    error = {"error": {"message": "bad", "type": "invalid_request_error", "param": "body", "code": "invalid_input"}}

    async def failing(job: dict[str, Any]) -> dict[str, Any]:
        return error

    out = asyncio.run(serverless.plain_handler(failing)({"id": "j", "input": {}}))
    assert set(out) == {"error"} and json.loads(out["error"]) == error
    ok = asyncio.run(serverless.plain_handler(plain)({"id": "j", "input": {"x": 1}}))
    assert ok == {"plain": {"x": 1}}
