"""HTTP mode's ASGI app and the queue's `openai_route` jobs on the fake engine (token-by-token
streaming): the same outputs as the actions, statuses, guards, streams and the cancellation path."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pytest
from starlette.types import Message, Scope

from handler.app import Worker
from handler.http.app import build_app
from handler.http.server import exposure_warning
from shared.errors import Overloaded
from tests.conftest import ADMIN, call, make_settings, ready_now
from tests.fakes.engine import FakeEngine, tokens_of

# Sentences: the guard releases text only at a clause start (an unfinished clause stays back whole).
LEAD = (
    "It was a calm and sunny afternoon. The ducks were out on the pond. "
    "The swans glided slowly past the reeds by the far bank. After a long walk everyone got "
)
TAIL = " in the fountain by the old oak trees while the band played on the grass until evening"
VOLATILE = {"generation_time", "message_id", "uptime_s", "conversation_id", "total_time"}


def stable(out: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in out.items() if k not in VOLATILE}


@pytest.mark.parametrize(
    ("method", "path", "action", "body"),
    [
        ("POST", "/chat", "chat", {"message": "Tell me a story", "system_prompt": "You tell stories."}),
        ("POST", "/enhance", "enhance", {"prompt": "beautiful woman", "job_type": "sdxl_image_fast"}),
        ("POST", "/enhance/legacy", "enhance_legacy", {"prompt": "a cat", "job_type": "video_fast"}),
        ("GET", "/enhancement/info", "enhancement_info", None),
        # host details without HTTP_AUTH_TOKEN need the admin token (liveness only otherwise)
        ("GET", "/memory/status", "memory_status", {"admin_token": ADMIN}),
        ("GET", "/model/info", "model_info", {"admin_token": ADMIN}),
        ("POST", "/enhancement/cache/clear", "cache_clear", {"admin_token": ADMIN}),
    ],
)
def test_seed_routes_answer_what_the_action_answers(
    make_worker: Callable[..., Worker], method: str, path: str, action: str, body: dict[str, Any] | None
) -> None:
    over_http = call(make_worker(FakeEngine(default="a reply")), method, path, json=body)
    queued = asyncio.run(
        make_worker(FakeEngine(default="a reply")).handle({"id": "q", "input": {**(body or {}), "action": action}})
    )
    assert over_http.status_code == 200, over_http.text
    assert stable(over_http.json()) == stable(queued)


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "field"),
    [
        ("/chat", {"message": 5}, 400, "invalid_input", "message"),
        ("/chat", {"message": "naked 12 year old"}, 422, "content_policy_violation", None),
        ("/chat/unrestricted", {"message": "hi"}, 403, "adult_content_disabled", "unrestricted"),
        ("/enhancement/cache/clear", {"admin_token": "wrong"}, 401, "unauthorized", "admin_token"),
        ("/admin", {"command": "teleport", "admin_token": ADMIN}, 400, "unknown_command", "command"),
    ],
)
def test_failures_have_the_status_that_fits_the_code(
    worker: Worker, path: str, body: dict[str, Any], status: int, code: str, field: str | None
) -> None:
    r = call(worker, "POST", path, json=body)
    assert r.status_code == status
    assert r.json() == {"success": False, "error_code": code, "error": r.json()["error"], "field": field}


def test_unknown_routes_fail_in_the_familys_shape(worker: Worker) -> None:
    seed = call(worker, "POST", "/teleport", json={})
    assert seed.status_code == 404 and seed.json()["error_code"] == "unknown_action" and seed.json()["field"] == "path"
    oai = call(worker, "POST", "/v1/completions", json={})
    assert oai.status_code == 404 and oai.json()["error"]["code"] == "unknown_action"
    assert call(worker, "GET", "/chat").status_code == 405


def test_overloaded_is_503_with_retry_after_on_both_apis(make_worker: Callable[..., Worker]) -> None:
    worker = make_worker(FakeEngine().enqueue(Overloaded("64 waiting"), Overloaded("64 waiting")))
    seed = call(worker, "POST", "/chat", json={"message": "hi"})
    oai = call(worker, "POST", "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert seed.status_code == oai.status_code == 503
    assert seed.headers["Retry-After"] == oai.headers["Retry-After"] == "5"
    assert seed.json()["error_code"] == oai.json()["error"]["code"] == "overloaded"


def test_limits_are_the_chat_services_and_name_the_openai_field(make_worker: Callable[..., Worker]) -> None:
    worker = make_worker(max_message_chars=10)
    body = {"messages": [{"role": "user", "content": "x" * 11}], "max_tokens": 4}
    r = call(worker, "POST", "/v1/chat/completions", json=body)
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages[-1].content"
    assert call(worker, "POST", "/chat", json={"message": "x" * 11}).json()["field"] == "message"
    whole = make_worker(max_input_chars=1024, max_message_chars=10, max_system_prompt_chars=10, max_history_chars=10)
    padded = {"messages": [{"role": "user", "content": "hi"}], "metadata": {"note": "y" * 2000}}
    r = call(whole, "POST", "/v1/chat/completions", json=padded)
    assert r.status_code == 400 and r.json()["error"]["param"] == "metadata"


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "user", "content": ""}], "messages[-1].content"),
        ([{"role": "user", "content": "x" * 11}], "messages[-1].content"),
        ([{"role": "system", "content": "s" * 11}, {"role": "user", "content": "hi"}], "messages"),
        ([{"role": "assistant", "content": "a" * 11}, {"role": "user", "content": "hi"}], "messages"),
    ],
)
def test_openai_errors_name_the_same_field_in_param_and_text(
    make_worker: Callable[..., Worker], messages: list[dict[str, str]], param: str
) -> None:
    worker = make_worker(max_message_chars=10, max_system_prompt_chars=10, max_history_item_chars=10)
    error = call(worker, "POST", "/v1/chat/completions", json={"messages": messages}).json()["error"]
    assert error["param"] == param
    assert param in error["message"]
    assert "message " not in error["message"] and "'message'" not in error["message"]
    assert "system_prompt" not in error["message"] and "conversation_history" not in error["message"]


def test_ping_is_204_until_the_model_is_loaded(worker: Worker, fake: FakeEngine) -> None:
    fake.unload()
    assert call(worker, "GET", "/ping").status_code == 204
    fake.load()
    assert call(worker, "GET", "/ping").status_code == 200


class _StoppedThread(FakeEngine):
    """An engine whose model thread stopped (Engine.problem set)."""

    @property
    def problem(self) -> str | None:
        return "the model thread stopped: RuntimeError"


def test_ping_is_503_while_the_engine_reports_a_problem(make_worker: Callable[..., Worker]) -> None:
    worker = make_worker(engine=_StoppedThread())
    answer = call(worker, "GET", "/ping")
    assert answer.status_code == 503
    assert answer.json() == {"status": "unhealthy"}  # bare: the reason is for an authorised /health


def test_bearer_token_guards_every_route_but_ping(make_worker: Callable[..., Worker]) -> None:
    worker = make_worker(http_auth_token="s3cret-test-token")
    assert call(worker, "GET", "/ping").status_code == 200
    assert call(worker, "GET", "/health").json()["error_code"] == "unauthorized"
    assert call(worker, "GET", "/v1/models").json()["error"]["code"] == "unauthorized"
    assert call(worker, "GET", "/health", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert call(worker, "GET", "/health", headers={"Authorization": "Bearer s3cret-test-token"}).status_code == 200
    assert call(worker, "GET", "/v1/models", headers={"X-Auth-Token": "s3cret-test-token"}).status_code == 200


@pytest.mark.parametrize(
    ("host", "token", "warned"),
    [("0.0.0.0", None, True), ("::", None, True), ("0.0.0.0", "a-long-random-value-7f3a", False),
     ("127.0.0.1", None, False), ("::1", None, False), ("localhost", None, False)],
)  # fmt: skip
def test_http_mode_warns_when_it_listens_openly_without_a_token(host: str, token: str | None, warned: bool) -> None:
    warning = exposure_warning(make_settings(host=host, http_auth_token=token))
    assert (warning is not None) == warned
    assert warning is None or ("HTTP_AUTH_TOKEN" in warning and host in warning)


def test_body_limit_is_413_for_declared_and_chunked_bodies(make_worker: Callable[..., Worker]) -> None:
    small = {"max_message_chars": 10, "max_system_prompt_chars": 10, "max_history_chars": 10}
    worker = make_worker(max_input_chars=1024, **small)  # the body limit follows: 4 x 1024 bytes
    big = json.dumps({"message": "x" * 5000}).encode()
    assert call(worker, "POST", "/chat", content=big).status_code == 413

    async def chunks() -> Any:
        for i in range(0, len(big), 500):
            yield big[i : i + 500]

    r = call(worker, "POST", "/v1/chat/completions", content=chunks())
    assert r.status_code == 413 and r.json()["error"]["param"] == "body"
    assert call(worker, "POST", "/chat", content=b"[1, 2]").json()["field"] == "body"


@pytest.mark.parametrize("path", ["/chat", "/v1/chat/completions"])
def test_deeply_nested_json_is_bad_input_not_a_crash(worker: Worker, path: str) -> None:
    r = call(worker, "POST", path, content=b"[" * 50_000 + b"]" * 50_000)
    assert r.status_code == 400
    param = r.json()["field"] if path == "/chat" else r.json()["error"]["param"]
    code = r.json()["error_code"] if path == "/chat" else r.json()["error"]["code"]
    assert (code, param) == ("invalid_input", "body")


def sse_events(text: str) -> list[str]:
    return [block.removeprefix("data: ") for block in text.split("\n\n") if block]


def test_stream_events_then_usage_then_done(worker: Worker, fake: FakeEngine) -> None:
    fake.enqueue("one two three four")
    body = {
        "messages": [{"role": "user", "content": "count"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    r = call(worker, "POST", "/openai/v1/chat/completions", json=body)
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1]) == "one two three four"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == len(
        tokens_of("one two three four")
    )


def test_a_refusal_mid_stream_sends_no_refused_text(make_worker: Callable[..., Worker]) -> None:
    fake = FakeEngine(token_chars=2).enqueue(LEAD + "naked" + TAIL)
    body = {"messages": [{"role": "user", "content": "Tell me about my kid's afternoon at the park"}], "stream": True}
    r = call(make_worker(fake), "POST", "/v1/chat/completions", json=body)
    events = sse_events(r.text)
    chunks = [json.loads(e) for e in events[:-2]]
    sent = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert sent and LEAD.startswith(sent.rstrip()) and "na" not in sent[len(LEAD) - 5 :]
    assert json.loads(events[-2])["error"]["code"] == "content_policy_violation" and events[-1] == "[DONE]"
    assert fake.streams[-1].stopped


def test_the_openai_client_raises_on_a_refusal_mid_stream(make_worker: Callable[..., Worker]) -> None:
    fake = FakeEngine(token_chars=2).enqueue(LEAD + "naked" + TAIL)
    app = build_app(make_worker(fake), ready_now)

    async def go() -> tuple[str, BaseException | None]:
        # the openai package's own HTTP library (httpx2), over the app in-process
        http_client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://worker")
        client = openai.AsyncOpenAI(base_url="http://worker/v1", api_key="-", http_client=http_client)
        text, error = "", None
        try:
            stream = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "Tell me about my kid's afternoon"}], stream=True
            )
            async for chunk in stream:
                text += chunk.choices[0].delta.content or "" if chunk.choices else ""
        except openai.APIError as exc:
            error = exc
        return text, error

    text, error = asyncio.run(go())
    assert isinstance(error, openai.APIError) and "content_policy_violation" in str(error)
    assert text and "naked" not in text


def test_a_refused_input_is_an_error_before_any_event(worker: Worker) -> None:
    body = {"messages": [{"role": "user", "content": "naked 12 year old"}], "stream": True}
    r = call(worker, "POST", "/v1/chat/completions", json=body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "content_policy_violation"


def test_seed_chat_streams_deltas_then_the_output(worker: Worker, fake: FakeEngine) -> None:
    fake.enqueue("one two three four")
    r = call(worker, "POST", "/chat", json={"message": "count", "stream": True})
    items = [json.loads(e) for e in sse_events(r.text)]
    assert r.headers["content-type"].startswith("text/event-stream")
    assert "".join(i["delta"] for i in items[:-1]) == "one two three four" == items[-1]["response"]
    refused = call(worker, "POST", "/chat", json={"message": "naked 12 year old", "stream": True})
    assert refused.status_code == 422 and refused.json()["error_code"] == "content_policy_violation"


async def _disconnect_during(worker: Worker, path: str, body: dict[str, Any], until: Callable[[], bool]) -> None:
    """Drive the ASGI app by hand: send the body, then hang up once `until()` holds."""
    app = build_app(worker, ready_now)
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}
        while not until():
            await asyncio.sleep(0.005)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        return None

    scope: Scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"content-type", b"application/json")], "client": ("127.0.0.1", 1), "server": ("w", 80),
    }  # fmt: skip
    await asyncio.wait_for(app(scope, receive, send), 10)


class SlowEngine(FakeEngine):
    """Records whether a non-streamed generation was cancelled while it ran."""

    def __init__(self) -> None:
        super().__init__(delay_s=30)
        self.started = self.cancelled = False

    async def generate(self, *args: Any, **kw: Any) -> Any:
        self.started = True
        try:
            return await super().generate(*args, **kw)
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    async def stream(self, *args: Any, **kw: Any) -> Any:
        self.started = True
        try:
            async for item in super().stream(*args, **kw):
                yield item
        except asyncio.CancelledError:
            self.cancelled = True
            raise


@pytest.mark.parametrize("path", ["/chat", "/v1/chat/completions"])
def test_a_client_that_hangs_up_cancels_its_generation(make_worker: Callable[..., Worker], path: str) -> None:
    engine = SlowEngine()
    body = {"message": "hi"} if path == "/chat" else {"messages": [{"role": "user", "content": "hi"}]}
    asyncio.run(_disconnect_during(make_worker(engine), path, body, lambda: engine.started))
    assert engine.cancelled


@pytest.mark.parametrize("path", ["/chat", "/v1/chat/completions"])
def test_a_client_that_hangs_up_before_the_first_streamed_text_cancels_it(
    make_worker: Callable[..., Worker], path: str
) -> None:
    engine = SlowEngine()
    body = {"message": "hi"} if path == "/chat" else {"messages": [{"role": "user", "content": "hi"}]}
    asyncio.run(_disconnect_during(make_worker(engine), path, {**body, "stream": True}, lambda: engine.started))
    assert engine.cancelled


def test_a_client_that_hangs_up_mid_stream_stops_the_engine(make_worker: Callable[..., Worker]) -> None:
    fake = FakeEngine(token_delay_s=0.01).enqueue(" ".join(["word"] * 200))
    body = {"messages": [{"role": "user", "content": "talk"}], "stream": True}
    asyncio.run(_disconnect_during(make_worker(fake), "/v1/chat/completions", body, lambda: bool(fake.streams)))
    assert fake.streams[-1].stopped and fake.streams[-1].generated < fake.streams[-1].planned


# ---- queue jobs with RunPod's OpenAI passthrough --------------------------------------------------

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def handle(worker: Worker, payload: dict[str, Any]) -> Any:
    return asyncio.run(worker.handle({"id": "q", "input": payload}))


def handle_stream(worker: Worker, payload: dict[str, Any]) -> list[Any]:
    async def go() -> list[Any]:
        return [item async for item in worker.handle_stream({"id": "q", "input": payload})]

    return asyncio.run(go())


def test_queue_completion_and_models(worker: Worker) -> None:
    out = handle(worker, {"openai_route": "/v1/chat/completions", "openai_input": CHAT})
    assert out["object"] == "chat.completion" and out["choices"][0]["message"]["content"] == "a friendly reply"
    models = handle(worker, {"openai_route": "/v1/models"})
    assert models["data"][0]["id"] == "fake"


def test_queue_stream_needs_the_generator_handler(worker: Worker) -> None:
    out = handle(worker, {"openai_route": "/v1/chat/completions", "openai_input": {**CHAT, "stream": True}})
    assert out["error"]["code"] == "invalid_input" and out["error"]["param"] == "stream"
    events = handle_stream(worker, {"openai_route": "/v1/chat/completions", "openai_input": {**CHAT, "stream": True}})
    assert all(isinstance(e, str) and e.startswith("data: ") and e.endswith("\n\n") for e in events)
    assert events[-1] == "data: [DONE]\n\n"


def job_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [m for m in caplog.messages if m.startswith("job ")]


def test_every_openai_call_writes_one_log_line_without_text(
    worker: Worker, fake: FakeEngine, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="handler"):
        call(worker, "POST", "/v1/chat/completions", json=CHAT)
        call(worker, "POST", "/v1/chat/completions", json={**CHAT, "stream": True})
        call(worker, "POST", "/v1/chat/completions", json={"messages": []})
        handle_stream(worker, {"openai_route": "/v1/chat/completions", "openai_input": {**CHAT, "stream": True}})
        call(worker, "POST", "/chat", json={"message": "hi", "stream": True})
    http, streamed, bad, queued, seed = job_lines(caplog)
    assert http.startswith("job http-") and " action=openai outcome=ok " in http
    assert " action=openai outcome=ok " in streamed and " action=openai outcome=invalid_input " in bad
    assert queued.startswith("job q action=openai outcome=ok ") and " action=chat outcome=ok " in seed
    assert "friendly" not in caplog.text


def test_a_call_its_client_left_logs_cancelled(
    caplog: pytest.LogCaptureFixture, make_worker: Callable[..., Worker]
) -> None:
    engine = SlowEngine()
    with caplog.at_level(logging.INFO, logger="handler"):
        asyncio.run(_disconnect_during(make_worker(engine), "/chat", {"message": "hi"}, lambda: engine.started))
        asyncio.run(_disconnect_during(make_worker(engine), "/v1/chat/completions", CHAT, lambda: engine.started))
    seed, oai = job_lines(caplog)
    assert " action=chat outcome=cancelled " in seed and " action=openai outcome=cancelled " in oai


def test_queue_openai_failures_are_openai_error_objects(worker: Worker) -> None:
    out = handle(worker, {"openai_route": "/v1/chat/completions", "openai_input": "not an object"})
    assert out == {"error": {"message": out["error"]["message"], "type": "invalid_request_error", "param": "body",
                             "code": "invalid_input"}}  # fmt: skip
    (item,) = handle_stream(worker, {"openai_route": "/v1/embeddings", "openai_input": CHAT})
    assert item["error"]["code"] == "invalid_input" and item["error"]["param"] == "openai_route"
    (item,) = handle_stream(worker, {"openai_route": "/v1/completions", "openai_input": {"prompt": "hi"}})
    assert item["error"]["code"] == "unknown_action" and "/v1/chat/completions" in item["error"]["message"]


def test_queue_models_by_id(worker: Worker) -> None:
    assert handle(worker, {"openai_route": "/v1/models/fake"})["id"] == "fake"
    other = handle(worker, {"openai_route": "/v1/models/org/other"})
    assert other["error"]["param"] == "model" and "'org/other'" in other["error"]["message"]


def test_http_models_by_id_and_completions_route(worker: Worker) -> None:
    for prefix in ("/v1", "/openai/v1"):
        assert call(worker, "GET", f"{prefix}/models/fake").json()["id"] == "fake"
        missing = call(worker, "GET", f"{prefix}/models/org/other")
        assert missing.status_code == 404 and missing.json()["error"]["param"] == "model"
        legacy = call(worker, "POST", f"{prefix}/completions", json={"model": "fake", "prompt": "hi"})
        assert legacy.status_code == 404 and legacy.json()["error"]["param"] == "path"
        assert "/v1/chat/completions" in legacy.json()["error"]["message"]
