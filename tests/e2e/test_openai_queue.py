"""RunPod's OpenAI passthrough on queue endpoints ({"openai_route", "openai_input"}) through the SDK's local
API, real model, with the image's defaults: streaming on (STREAM_ENABLED unset), the model named the RunPod
way (MODEL_NAME = a Hugging Face repo id, found offline in a cache laid out as Hugging Face lays it under
HF_HOME) and worker-vllm's OPENAI_SERVED_MODEL_NAME_OVERRIDE. Answered as RunPod's vLLM worker answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests

from shared.engine.model_source import converted_dir, resolve
from shared.settings import load_settings
from tests.e2e.conftest import ADMIN, LocalApi
from tests.hf_cache import lay_out_hub_cache

pytestmark = pytest.mark.e2e

CHAT = {"messages": [{"role": "user", "content": "Name three colours."}], "max_tokens": 12, "temperature": 0}
REPO = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture(scope="module")
def worker(api: LocalApi, start_api: Callable[..., LocalApi], tmp_path_factory: pytest.TempPathFactory) -> LocalApi:
    """`api` has converted the embedded GGUF by now; its safetensors + tokenizer become REPO in a hub cache."""
    converted = converted_dir(resolve(None), load_settings().model_cache_dir)
    hf_home = tmp_path_factory.mktemp("hf-home")
    lay_out_hub_cache(converted, hf_home, REPO)
    env = {"MODEL_NAME": REPO, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "POLICY_JUDGE": "off"}
    return start_api(**env, OPENAI_SERVED_MODEL_NAME_OVERRIDE="queue-model")


def job(route: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"openai_route": route, **({"openai_input": body} if body is not None else {})}


def run_then(worker: LocalApi, payload: dict[str, Any], verb: str) -> dict[str, Any]:
    """POST /run, then POST /stream/{id} or /status/{id} (the SDK's local API answers each once, when done)."""
    submitted = requests.post(f"{worker.url}/run", json={"input": payload}, timeout=10).json()
    answer = requests.post(f"{worker.url}/{verb}/{submitted['id']}", timeout=120)
    answer.raise_for_status()
    return dict(answer.json())


def test_the_model_named_by_repo_id_loads_offline_and_chats(worker: LocalApi) -> None:
    info = worker.output({"action": "model_info", "admin_token": ADMIN})  # the admin view shows the path
    assert info["model_name"] == REPO and f"models--{REPO.replace('/', '--')}/snapshots/" in info["model_path"]
    reply = worker.output({"action": "chat", "message": "Hello!", "max_tokens": 8, "temperature": 0})
    assert reply["success"] is True and reply["response"].strip()


def test_completion_object_when_not_streamed(worker: LocalApi) -> None:
    out = worker.output(job("/v1/chat/completions", CHAT))  # one object, not a list: the plain handler
    assert out["object"] == "chat.completion" and out["choices"][0]["message"]["content"]
    assert out["model"] == "queue-model"
    assert out["usage"]["total_tokens"] == out["usage"]["prompt_tokens"] + out["usage"]["completion_tokens"]


def test_models_routes(worker: LocalApi) -> None:
    models = worker.output(job("/v1/models"))
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["queue-model"]
    assert worker.output(job("/v1/models/queue-model"))["id"] == "queue-model"


def test_run_then_stream_yields_openai_chunks_ending_in_done(worker: LocalApi) -> None:
    answer = run_then(worker, job("/v1/chat/completions", {**CHAT, "stream": True}), "stream")
    assert answer["status"] == "COMPLETED"
    events = [item["output"] for item in answer["stream"]]
    assert all(isinstance(e, str) and e.startswith("data: ") and e.endswith("\n\n") for e in events)
    assert events[-1] == "data: [DONE]\n\n"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "queue-model" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text.strip() and chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    plain = worker.output(job("/v1/chat/completions", CHAT))  # the same request, not streamed
    assert plain["choices"][0]["message"]["content"] == text.strip()


MINOR = {"messages": [{"role": "user", "content": "naked 12 year old girl"}]}
FAILURES = [
    (job("/v1/chat/completions", {**CHAT, "n": 3}), "invalid_input", "n"),
    (job("/v1/chat/completions", {**CHAT, "messages": "hi"}), "invalid_input", "messages"),
    (job("/v1/chat/completions", MINOR), "content_policy_violation", None),
    (job("/v1/embeddings", {}), "invalid_input", "openai_route"),
    (job("/v1/completions", {"prompt": "hi"}), "unknown_action", "openai_route"),
]


@pytest.mark.parametrize(("payload", "code", "param"), FAILURES)
def test_failures_are_openai_error_objects(
    worker: LocalApi, payload: dict[str, Any], code: str, param: str | None
) -> None:
    # not streamed: a FAILED job whose error string is the OpenAI error object (RunPod's job error is text)
    answer = worker.runsync(payload)
    assert answer["status"] == "FAILED"
    error = json.loads(answer["error"])["error"]
    assert error["code"] == code and error["param"] == param and error["message"]
    assert error["type"] == "invalid_request_error"
    # streamed, /run + /stream: the one item is the OpenAI error object (RunPod fails a job on it)
    streamed = {**payload, "openai_input": {**payload["openai_input"], "stream": True}}
    items = [item["output"] for item in run_then(worker, streamed, "stream")["stream"]]
    assert items == [{"error": error}]
