"""`ENGINE=vllm WORKER_MODE=http python -m handler` on this CPU (vLLM's CPU build, the embedded
model), driven by plain HTTP with the seed's bodies and by the official `openai` client: the
same routes and the same output fields as the transformers engine's HTTP-mode test
(tests/e2e/test_http_mode.py, whose field sets this module reuses), and a client that leaves a
stream mid-reply ends its request inside vLLM.

One worker process serves the module (its engine core's start is the cost)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import openai
import psutil
import pytest
import requests

from tests.e2e.conftest import ADMIN, ROOT, assert_sigterm_ends_its_engine_core, end_tree, free_port, worker_env
from tests.e2e.test_http_mode import CHAT_FIELDS, ENHANCE_FIELDS, GET_ROUTES, TOKEN, HttpWorker, _wait

pytestmark = pytest.mark.e2e

JOB_TYPES = ["sdxl_image_fast", "sdxl_image_high", "video_fast", "video_high", "wan_7b_enhanced"]


@pytest.fixture(scope="module")
def vllm_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpWorker]:
    log_path = tmp_path_factory.mktemp("vllm-http") / "worker.log"
    port, health_port = free_port(), free_port()
    env = worker_env(
        ENGINE="vllm",
        ENFORCE_EAGER="true",
        WORKER_MODE="http",
        PORT=str(port),
        PORT_HEALTH=str(health_port),
        HTTP_AUTH_TOKEN=TOKEN,
        DEFAULT_MAX_TOKENS="8",
        MAX_CONTEXT_TOKENS="2048",
        SERVED_MODEL_NAME="chat-worker-vllm",
        LOG_LEVEL="INFO",
    )
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "handler"], cwd=ROOT, env=env, stdout=log, stderr=log)
    worker = HttpWorker(f"http://127.0.0.1:{port}", proc, log_path, f"http://127.0.0.1:{health_port}")
    try:
        # ready = model loaded and the start-up warm-up done (vLLM's engine core starts first)
        _wait(
            lambda: True if requests.get(worker.url + "/ping", timeout=5).status_code == 200 else None,
            proc,
            log_path,
            timeout=480.0,
        )
        worker.before_ready["children"] = psutil.Process(proc.pid).children(recursive=True)
        yield worker
    finally:
        end_tree(proc, worker.before_ready.get("children", []))


@pytest.fixture(scope="module")
def client(vllm_http: HttpWorker) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{vllm_http.url}/v1", api_key=TOKEN, max_retries=0, timeout=120)


def scheduler(worker: HttpWorker) -> dict[str, Any]:
    info = worker.get("/model/info").json()
    return dict(info["load"]["scheduler"])


def test_model_info_names_vllm(vllm_http: HttpWorker) -> None:
    info = vllm_http.get("/model/info").json()
    assert info["model_loaded"] is True and info["load"]["engine"] == "vllm"
    assert info["load"]["vllm_version"] == "0.32.0" and info["load"]["kv_cache_tokens"] > 0
    assert vllm_http.get("/health").json()["ready"] is True


@pytest.mark.parametrize(("path", "fields"), GET_ROUTES)
def test_get_routes_answer_the_seeds_fields(vllm_http: HttpWorker, path: str, fields: set[str]) -> None:
    r = vllm_http.get(path)
    assert r.status_code == 200, r.text
    assert fields <= set(r.json())


def test_admin_commands(vllm_http: HttpWorker) -> None:
    memory = vllm_http.post("/admin", {"command": "memory_status"}, headers={"X-Admin-Token": ADMIN})
    assert memory.status_code == 200, memory.text
    assert memory.json()["engine"] == "vllm" and memory.json()["kv_cache_tokens"] > 0


def test_stateful_chat(vllm_http: HttpWorker) -> None:
    first = vllm_http.post("/chat", {"message": "I like tea.", "conversation_id": "vh-1", "max_tokens": 8})
    again = vllm_http.post("/chat", {"message": "What do I like?", "conversation_id": "vh-1", "max_tokens": 8})
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert set(first.json()) >= CHAT_FIELDS and set(first.json()) == set(again.json())
    assert again.json()["history_turns_used"] == 2 and again.json()["response"].strip()


def test_a_chat_streams_as_server_sent_events(vllm_http: HttpWorker) -> None:
    body = {"message": "Tell me about rain in three short sentences.", "stream": True, "max_tokens": 64}
    r = vllm_http.post("/chat", {**body, "temperature": 0}, stream=True)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    items = [json.loads(line.decode().removeprefix("data: ")) for line in r.iter_lines() if line]
    *deltas, last = items
    assert len(deltas) >= 2 and all(set(d) == {"delta"} for d in deltas)
    assert last["success"] is True and "".join(d["delta"] for d in deltas).strip() == last["response"]


@pytest.mark.parametrize("job_type", JOB_TYPES)
def test_enhance_every_job_type(vllm_http: HttpWorker, job_type: str) -> None:
    r = vllm_http.post("/enhance", {"prompt": "a lighthouse on a cliff", "job_type": job_type, "seed": 4})
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) >= ENHANCE_FIELDS - {"sdxl_optimizations"} and out["job_type"] == job_type
    assert "lighthouse" in out["enhanced_prompt"]


def test_openai_completion_and_stream(client: openai.OpenAI) -> None:
    done = client.chat.completions.create(
        model="chat-worker-vllm",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=12,
        temperature=0,
    )
    assert done.model == "chat-worker-vllm" and done.choices[0].message.content
    assert done.usage is not None and 0 < done.usage.completion_tokens <= 12
    stream = client.chat.completions.create(
        model="chat-worker-vllm",
        messages=[{"role": "user", "content": "Tell me about the sea in short, simple sentences."}],
        max_completion_tokens=64,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks: list[Any] = list(stream)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2
    usage = chunks[-1].usage
    assert usage is not None and 0 < usage.completion_tokens <= 64


def settled(worker: HttpWorker) -> dict[str, Any]:
    """Polls until vLLM holds no request (a condition with a deadline, not a timed hand-off)."""
    deadline = time.monotonic() + 120
    while (now := scheduler(worker))["in_flight"] or now["engine_unfinished"]:
        assert time.monotonic() < deadline, now
        time.sleep(0.2)
    return now


def test_a_client_leaving_a_stream_ends_the_request_in_vllm(vllm_http: HttpWorker) -> None:
    """Unread, the greedy story runs past 100 tokens (the control); a client that reads its first
    delta and closes the connection has the HTTP adapter cancel the job and vLLM abort it."""
    story = {"message": "Write a long story for my kid about a dragon.", "temperature": 0}
    control = vllm_http.post("/chat", {**story, "max_tokens": 100}).json()
    assert control["finish_reason"] == "length", control
    before = settled(vllm_http)["tokens_generated"]
    r = vllm_http.post("/chat", {**story, "max_tokens": 1000, "stream": True}, stream=True)
    assert r.status_code == 200
    assert next(line for line in r.iter_lines() if line).startswith(b"data: ")
    r.close()
    assert settled(vllm_http)["tokens_generated"] - before < 100  # stopped inside the engine
    assert vllm_http.post("/chat", {"message": "Still there?", "max_tokens": 4}).json()["success"] is True


def test_stopping_the_worker_ends_its_engine_core(vllm_http: HttpWorker) -> None:
    """Last in the module: SIGTERM to the worker ends its vLLM engine core too (no orphan)."""
    assert_sigterm_ends_its_engine_core(vllm_http.proc)
