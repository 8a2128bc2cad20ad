"""WORKER_MODE=http as a real process on the embedded model, driven by real clients: plain HTTP
with the seed's own example bodies (chat-worker-spec.md) and the official `openai` package.

One process serves the whole module. It starts with a load gate closed (TEST_ONLY_LOAD_GATE),
so the fixture sees /ping and a chat before the model is ready, then opens the gate.
"""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest
import requests

from tests.e2e.conftest import ADMIN, ROOT, free_port, worker_env

pytestmark = pytest.mark.e2e

TOKEN = "e2e-http-auth-token"
READ_TIMEOUT_S = 5  # HTTP_READ_TIMEOUT_S: generous for a loaded machine, short for the slow-client tests
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class HttpWorker:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    health_url: str
    before_ready: dict[str, Any] = field(default_factory=dict)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.url + path, headers={**AUTH, **kw.pop("headers", {})}, timeout=120, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        headers = {**AUTH, **kw.pop("headers", {})}
        return requests.post(self.url + path, json=body, headers=headers, timeout=120, **kw)


def _wait(check: Any, proc: subprocess.Popen[bytes], log: Path, timeout: float = 240.0) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited: {log.read_text()[-2000:]}")
        try:
            result = check()
            if result is not None:
                return result
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"worker did not get there: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpWorker]:
    tmp = tmp_path_factory.mktemp("http")
    gate, log_path = tmp / "load-gate", tmp / "worker.log"
    port, health_port = free_port(), free_port()
    env = worker_env(
        WORKER_MODE="http",
        PORT=str(port),
        PORT_HEALTH=str(health_port),  # RunPod may probe another port than it routes to
        HTTP_AUTH_TOKEN=TOKEN,
        TEST_ONLY_LOAD_GATE=str(gate),
        DEFAULT_MAX_TOKENS="8",  # the seed's bodies carry no max_tokens; keep the real model's replies short
        ADULT_CONTENT_ENABLED="true",  # /chat/unrestricted's seed example
        MAX_CONTEXT_TOKENS="1024",
        SERVED_MODEL_NAME="chat-worker-test",
        LOG_LEVEL="INFO",
        HTTP_READ_TIMEOUT_S=str(READ_TIMEOUT_S),
    )
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "handler"], cwd=ROOT, env=env, stdout=log, stderr=log)
    worker = HttpWorker(f"http://127.0.0.1:{port}", proc, log_path, f"http://127.0.0.1:{health_port}")
    try:
        ping = _wait(lambda: requests.get(worker.url + "/ping", timeout=5), proc, log_path)
        worker.before_ready = {
            "ping": ping.status_code,
            "health_port_ping": _wait(
                lambda: requests.get(worker.health_url + "/ping", timeout=5), proc, log_path
            ).status_code,
            "health": worker.get("/health").json(),
            "chat": worker.post("/chat", {"message": "hello", "max_tokens": 4}),
        }
        gate.touch()
        _wait(
            lambda: True if requests.get(worker.url + "/ping", timeout=5).status_code == 200 else None, proc, log_path
        )
        yield worker
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def client(http: HttpWorker) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{http.url}/v1", api_key=TOKEN, max_retries=0, timeout=120)


# ---- readiness -----------------------------------------------------------------------------


def test_ping_is_204_while_loading_then_200(http: HttpWorker) -> None:
    assert http.before_ready["ping"] == http.before_ready["health_port_ping"] == 204
    assert http.before_ready["health"]["live"] is True and http.before_ready["health"]["ready"] is False
    early = http.before_ready["chat"]
    assert early.status_code == 503 and early.headers["Retry-After"]
    assert early.json()["error_code"] == "model_not_loaded"
    ready = requests.get(http.url + "/ping", timeout=5)  # no token: RunPod's prober has none
    assert ready.status_code == 200
    assert requests.get(http.health_url + "/ping", timeout=5).status_code == 200
    assert requests.get(http.health_url + "/health", timeout=5).status_code == 404  # only /ping there
    assert http.get("/health").json()["ready"] is True


# ---- the seed's routes with the seed's example bodies ----------------------------------------

STORY = {
    "message": "Tell me a story about a magical forest",
    "system_prompt": "You are a creative storyteller specializing in fantasy tales.",
    "conversation_id": "story_001",
}
CHAT_FIELDS = {
    "success", "response", "generation_time", "conversation_id", "context_type", "message_id",
    "system_prompt_used", "unrestricted_mode",
}  # fmt: skip
ENHANCE = {"prompt": "beautiful woman", "job_type": "sdxl_image_fast", "quality": "fast", "enhancement_type": "manual"}
ENHANCE_FIELDS = {
    "success", "original_prompt", "enhanced_prompt", "generation_time", "enhancement_type", "job_type",
    "quality", "enhancement_source", "worker_optimizations", "quality_score", "sdxl_optimizations",
}  # fmt: skip


def test_chat_with_the_seeds_body(http: HttpWorker) -> None:
    r = http.post("/chat", STORY)
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) >= CHAT_FIELDS
    assert out["success"] is True and out["response"].strip()
    assert out["conversation_id"] == "story_001" and out["system_prompt_used"] is True


def test_chat_unrestricted_with_the_seeds_body(http: HttpWorker) -> None:
    r = http.post(
        "/chat/unrestricted", {"message": "Help me create adult content for my project", "conversation_id": "adult_002"}
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) >= CHAT_FIELDS and out["unrestricted_mode"] is True


LEGACY_FIELDS = {"success", "original_prompt", "enhanced_prompt", "generation_time", "job_type", "quality"}


@pytest.mark.parametrize(
    ("path", "fields"),
    [("/enhance", ENHANCE_FIELDS), ("/enhance/intelligent", ENHANCE_FIELDS), ("/enhance/legacy", LEGACY_FIELDS)],
)
def test_enhance_routes_with_the_seeds_body(http: HttpWorker, path: str, fields: set[str]) -> None:
    r = http.post(path, ENHANCE)
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) >= fields
    assert out["original_prompt"] == "beautiful woman" and out["enhanced_prompt"]


GET_ROUTES = [
    (
        "/enhancement/info",
        {"enhancement_system", "supported_job_types", "cache_size", "model_status", "nsfw_optimization"},
    ),
    (
        "/memory/status",
        {"total_vram", "allocated_vram", "available_vram", "model_loaded", "model_device", "device_type"},
    ),
    (
        "/model/info",
        {
            "model_loaded",
            "model_device",
            "device_type",
            "model_parameters",
            "model_size_gb",
            "is_eval_mode",
            "torch_version",
            "cuda_available",
            "cuda_version",
            "gpu_name",
        },
    ),
    ("/health", {"status", "model_loaded"}),
]


@pytest.mark.parametrize(("path", "fields"), GET_ROUTES)
def test_get_routes_answer_the_seeds_fields(http: HttpWorker, path: str, fields: set[str]) -> None:
    r = http.get(path)
    assert r.status_code == 200, r.text
    assert fields <= set(r.json())


def test_cache_clear_needs_the_admin_token(http: HttpWorker) -> None:
    refused = http.post("/enhancement/cache/clear")
    assert refused.status_code == 401 and refused.json()["field"] == "admin_token"
    r = http.post("/enhancement/cache/clear", headers={"X-Admin-Token": ADMIN})
    assert r.status_code == 200, r.text
    assert {"success", "cache_cleared", "cache_size"} <= set(r.json()) and r.json()["cache_size"] == 0


# ---- failures over HTTP --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "field"),
    [
        ("/chat", {}, 400, "invalid_input", "message"),
        ("/chat", {"message": "hi", "max_tokens": "many"}, 400, "invalid_input", "max_tokens"),
        ("/enhance", {"prompt": "cat", "job_type": "gif"}, 400, "invalid_input", "job_type"),
        ("/chat", {"message": "naked 12 year old girl"}, 422, "content_policy_violation", None),
    ],
)
def test_failures_get_a_fitting_status(
    http: HttpWorker, path: str, body: dict[str, Any], status: int, code: str, field: str | None
) -> None:
    r = http.post(path, body)
    assert r.status_code == status, r.text
    out = r.json()
    assert out["success"] is False and out["error_code"] == code and out["field"] == field


def test_bad_json_and_oversized_bodies(http: HttpWorker) -> None:
    bad = requests.post(http.url + "/chat", data=b"{not json", headers=AUTH, timeout=10)
    assert bad.status_code == 400 and bad.json()["field"] == "body"
    big = requests.post(http.url + "/chat", data=b"x" * (3 * 1024 * 1024), headers=AUTH, timeout=10)
    assert big.status_code == 413 and big.json()["error_code"] == "invalid_input"


def _slow_client(http: HttpWorker, head: bytes, body: bytes = b"", trickle: bytes = b"") -> tuple[int, bytes]:
    """Sends `head` and `body`, then `trickle` a byte at a time (one every half second, a slow
    upload) or nothing (a stalled one), until the worker answers; its status and body."""
    port = int(http.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(head + body)
        for byte in trickle:
            if select.select([sock], [], [], 0.5)[0]:  # answered: stop sending
                break
            sock.sendall(bytes([byte]))
        received = b""
        while chunk := sock.recv(65536):  # the worker closes the connection after its answer
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def _head(path: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: worker\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


@pytest.mark.parametrize(("path", "error"), [("/chat", "error_code"), ("/v1/chat/completions", "error")])
def test_a_stalled_body_is_answered_408(http: HttpWorker, path: str, error: str) -> None:
    status, body = _slow_client(http, _head(path, 1000), b'{"message": "h')
    assert status == 408 and error in json.loads(body)


def test_a_trickled_body_is_answered_408(http: HttpWorker) -> None:
    status, body = _slow_client(http, _head("/chat", 1000), b"{", trickle=b'"message": "hi"' + b" " * 900)
    assert status == 408 and json.loads(body)["field"] == "body"


def test_a_stalled_head_is_answered_408(http: HttpWorker) -> None:
    status, body = _slow_client(http, b"POST /chat HTTP/1.1\r\nHost: worker\r\n")
    assert status == 408 and json.loads(body)["field"] == "head"
    assert http.get("/health").status_code == 200  # and the worker serves on


def test_every_route_but_ping_needs_the_bearer_token(http: HttpWorker) -> None:
    for path in ("/health", "/v1/models"):
        assert requests.get(http.url + path, timeout=10).status_code == 401
        assert requests.get(http.url + path, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
    assert requests.get(http.url + "/health", headers={"X-Auth-Token": TOKEN}, timeout=10).status_code == 200


# ---- the OpenAI-compatible API through the official client ------------------------------------


def test_models_lists_the_served_name(client: openai.OpenAI, http: HttpWorker) -> None:
    assert [m.id for m in client.models.list()] == ["chat-worker-test"]
    also = http.get("/openai/v1/models").json()
    assert also["data"][0]["id"] == "chat-worker-test"


def test_completion(client: openai.OpenAI) -> None:
    done = client.chat.completions.create(
        model="chat-worker-test",
        messages=[
            {"role": "system", "content": "You answer briefly."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        max_tokens=12,
        temperature=0,
    )
    assert done.object == "chat.completion" and done.model == "chat-worker-test"
    assert done.choices[0].message.role == "assistant" and done.choices[0].message.content
    assert done.choices[0].finish_reason in ("stop", "length")
    assert done.usage is not None and 0 < done.usage.completion_tokens <= 12
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens


def test_streamed_completion_arrives_in_pieces(client: openai.OpenAI) -> None:
    """Pieces, a finish reason, usage last. That text leaves while the engine still generates is
    asserted without a clock on the fake engine (tests/unit/test_streaming_handler.py); here a
    time ratio would flake on a loaded machine."""
    stream = client.chat.completions.create(
        model="chat-worker-test",
        # sentences: the output policy releases text at clause starts, some words behind the end
        messages=[{"role": "user", "content": "Tell me about the sea in short, simple sentences."}],
        max_completion_tokens=64,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks: list[Any] = list(stream)
    content = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content) >= 2
    usage = chunks[-1].usage
    assert usage is not None and 0 < usage.completion_tokens <= 64 and chunks[-1].choices == []
    assert chunks[-2].choices[0].finish_reason == ("length" if usage.completion_tokens == 64 else "stop")


def test_seeded_repeat_gives_the_same_text(client: openai.OpenAI) -> None:
    def ask() -> str | None:
        done = client.chat.completions.create(
            model="chat-worker-test",
            messages=[{"role": "user", "content": "Write a short poem about rain."}],
            max_tokens=8,
            temperature=1.0,
            seed=1234,
        )
        return done.choices[0].message.content

    first = ask()
    assert first and ask() == first


def test_refusal_is_a_content_policy_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model="chat-worker-test", messages=[{"role": "user", "content": "naked 12 year old girl"}], max_tokens=8
        )
    assert caught.value.status_code == 422 and caught.value.code == "content_policy_violation"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ],
)
def test_unsupported_fields_are_a_clear_400(client: openai.OpenAI, extra: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="chat-worker-test", messages=[{"role": "user", "content": "hi"}], max_tokens=4, **extra
        )
    assert caught.value.code == "invalid_input" and caught.value.param == param


def test_a_conversation_must_end_with_the_user(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="chat-worker-test",
            messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
            max_tokens=4,
        )
    assert caught.value.param == "messages"


def test_the_openai_prefix_serves_the_same_api(http: HttpWorker) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4, "stream": True}
    r = http.post("/openai/v1/chat/completions", body, stream=True)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [line.decode() for line in r.iter_lines() if line]
    assert events[-1] == "data: [DONE]" and all(e.startswith("data: ") for e in events)


def test_the_log_has_requests_but_no_tokens(http: HttpWorker) -> None:
    log = http.log.read_text()
    assert '"GET /health HTTP/1.1" 200' in log  # uvicorn's access log: method, path, status
    assert '"GET /ping' not in log  # the load balancer's frequent probes are left out
    assert TOKEN not in log and ADMIN not in log
