"""What a hostile caller gets back is well-formed and small, numbers are bounded, admin commands
never stall the event loop, and HTTP mode shows host details only to its operators.

The real-server halves (the RunPod SDK's local API, uvicorn) are tests/e2e/test_hostile_inputs.py
and tests/e2e/test_http_mode.py; these run on the fake engine.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from handler.app import Worker
from handler.errors import echo
from handler.http.guards import BodyLimit
from handler.openai.protocol import ChatCompletionRequest
from tests.conftest import ADMIN, call, run
from tests.fakes.engine import FakeEngine

LONG = "a" * 100_000


def encoded(out: dict[str, Any]) -> bytes:
    """The output as the RunPod SDK sends it: UTF-8 JSON (a lone surrogate cannot be encoded)."""
    return json.dumps(out, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        ({"action": "\ud800", "message": "hi"}, "invalid_input", "action"),
        ({"action": "chat\udfff"}, "invalid_input", "action"),
        ({"action": LONG, "message": "hi"}, "unknown_action", "action"),
        ({"action": "x" * 99_999 + "\ud800"}, "invalid_input", "action"),
        ({"action": "admin", "command": "\ud800"}, "invalid_input", "command"),
        ({"action": "admin", "command": LONG}, "unknown_command", "command"),
        ({"action": "admin", "command": "x" * 99_999 + "\ud800"}, "invalid_input", "command"),
    ],
    ids=["surrogate-action", "surrogate-after-a-name", "100K-action", "100K-action-ending-in-a-surrogate",
         "surrogate-command", "100K-command", "100K-command-ending-in-a-surrogate"],
)  # fmt: skip
def test_an_unknown_or_malformed_name_fails_small_and_well_formed(
    worker: Worker, payload: dict[str, Any], code: str, field: str
) -> None:
    out = run(worker, payload)
    assert (out["success"], out["error_code"], out["field"]) == (False, code, field)
    assert len(encoded(out)) < 1024


def test_an_unknown_name_is_named_by_a_short_escaped_prefix(worker: Worker) -> None:
    out = run(worker, {"action": "\x1b[2J" + LONG})
    assert out["error"].startswith("unknown_action: unknown action '\\x1b[2Jaaaa")
    assert "…;" in out["error"] and "\x1b" not in out["error"]
    short = run(worker, {"action": "admin", "command": "teleport"})
    assert short["error"].startswith("unknown_command: unknown admin command 'teleport'; valid: ")


def test_echo_bounds_and_escapes() -> None:
    assert echo("chat") == "'chat'"
    assert echo("\ud800") == "'\\ud800'"
    assert echo("b" * 40) == "'" + "b" * 32 + "'…"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"action": "chat", "message": "hi", "top_k": 10**30}, "top_k"),
        ({"action": "chat", "message": "hi", "top_k": 1_000_001}, "top_k"),
        ({"action": "chat", "message": "hi", "max_tokens": 10**30}, "max_tokens"),
        ({"action": "chat", "message": "hi", "seed": 2**32}, "seed"),
        ({"action": "chat", "message": "hi", "temperature": 1e308}, "temperature"),
        ({"action": "enhance", "prompt": "a fox", "seed": 10**30}, "seed"),
    ],
    ids=["top_k-10^30", "top_k-just-over", "max_tokens-10^30", "seed-2^32", "temperature-1e308", "enhance-seed"],
)
def test_numbers_have_upper_bounds(worker: Worker, payload: dict[str, Any], field: str) -> None:
    out = run(worker, payload)
    assert (out["error_code"], out["field"]) == ("invalid_input", field)
    assert len(encoded(out)) < 1024


@pytest.mark.parametrize("field", ["top_k", "max_tokens", "max_completion_tokens", "seed"])
def test_openai_numbers_have_upper_bounds(field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ChatCompletionRequest.model_validate({"messages": [{"role": "user", "content": "hi"}], field: 10**30})
    assert caught.value.errors()[0]["loc"] == (field,)


def test_top_k_at_its_bound_is_served(worker: Worker) -> None:
    assert run(worker, {"action": "chat", "message": "hi", "top_k": 1_000_000})["success"] is True


class SlowUnload(FakeEngine):
    """An unload that holds until released, as the real one joins the model thread."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()

    def unload(self) -> None:
        self.entered.set()
        self.release.wait(30)  # bounded, so a loop-blocking unload fails the test instead of hanging it
        super().unload()


def test_unload_never_blocks_the_event_loop(make_worker: Callable[..., Worker]) -> None:
    engine = SlowUnload()
    worker = make_worker(engine)

    async def go() -> tuple[dict[str, Any], bool, dict[str, Any]]:
        job = {"id": "u", "input": {"action": "admin", "command": "unload", "admin_token": ADMIN}}
        unloading = asyncio.ensure_future(worker.handle(job))
        await asyncio.to_thread(engine.entered.wait, 30)
        health = await worker.handle({"id": "h", "input": {"action": "health"}})
        still_unloading = not unloading.done()  # health answered while unload was still waiting
        engine.release.set()
        return health, still_unloading, await unloading

    health, still_unloading, unloaded = asyncio.run(go())
    assert health["live"] is True and still_unloading
    assert unloaded == {"success": True, "model_loaded": False}


# ---- HTTP mode ------------------------------------------------------------------------------


LIVENESS = {"success", "live", "ready", "detail"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/health", None),
        ("GET", "/model/info", None),
        ("GET", "/memory/status", None),
        ("POST", "/admin", {"command": "model_info"}),
        ("GET", "/health", {"admin_token": "wrong"}),
        ("GET", "/health", {"admin_token": "\ud800"}),
    ],
    ids=["health", "model-info", "memory-status", "admin-model-info", "wrong-token", "malformed-token"],
)
def test_without_a_token_host_details_answer_liveness_only(
    worker: Worker, method: str, path: str, body: dict[str, Any] | None
) -> None:
    kw: dict[str, Any] = {"content": json.dumps(body)} if body is not None else {}
    r = call(worker, method, path, **kw)
    assert r.status_code == 200
    assert set(r.json()) == LIVENESS and r.json()["live"] is True and r.json()["ready"] is True


def test_the_admin_token_or_the_bearer_token_shows_the_details(make_worker: Callable[..., Worker]) -> None:
    open_worker = make_worker()
    assert "device_type" in call(open_worker, "GET", "/model/info", headers={"X-Admin-Token": ADMIN}).json()
    assert "store" in call(open_worker, "GET", "/health", json={"admin_token": ADMIN}).json()
    guarded = make_worker(http_auth_token="s3cret-test-token")
    r = call(guarded, "GET", "/memory/status", headers={"Authorization": "Bearer s3cret-test-token"})
    assert r.status_code == 200 and set(r.json()) != LIVENESS and "ready" not in r.json()


def test_liveness_says_not_ready_without_saying_why(make_worker: Callable[..., Worker]) -> None:
    class Stopped(FakeEngine):
        @property
        def problem(self) -> str | None:
            return "model thread stopped: RuntimeError at /opt/secret/path"

    r = call(make_worker(Stopped()), "GET", "/health")
    assert r.json()["ready"] is False and "RuntimeError" not in r.text
    ping = call(make_worker(Stopped()), "GET", "/ping")
    assert ping.status_code == 503 and ping.json() == {"status": "unhealthy"}


async def _stalled_upload(path: str, timeout_s: float) -> tuple[list[dict[str, Any]], bool]:
    """A request whose body's first bytes arrive and then nothing more, through BodyLimit."""
    reached = False

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal reached
        reached = True

    never = asyncio.Event()
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": b'{"message": "h', "more_body": True}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await never.wait()  # the client keeps the connection open and sends nothing
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": path, "headers": [(b"content-length", b"1000")]}
    await BodyLimit(app, limit=10_000, timeout_s=timeout_s)(scope, receive, send)
    return sent, reached


def _seed(body: dict[str, Any]) -> tuple[str, str]:
    return body["error_code"], body["field"]


def _openai(body: dict[str, Any]) -> tuple[str, str]:
    return body["error"]["code"], body["error"]["param"]


@pytest.mark.parametrize(("path", "named"), [("/chat", _seed), ("/v1/chat/completions", _openai)])
def test_a_stalled_body_is_answered_408_and_the_connection_closed(
    path: str, named: Callable[[dict[str, Any]], tuple[str, str]]
) -> None:
    sent, reached = asyncio.run(asyncio.wait_for(_stalled_upload(path, timeout_s=0.05), 60))
    start, body = sent[0], json.loads(sent[1]["body"])
    assert start["status"] == 408 and (b"connection", b"close") in start["headers"]
    assert named(body) == ("invalid_input", "body")
    assert not reached  # the route never saw it
