"""`ENGINE=vllm python -m handler` on this CPU (vLLM's CPU build, the embedded model), through
the RunPod SDK's local API: the same actions and output shapes as on the transformers engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.e2e.conftest import LocalApi, assert_sigterm_ends_its_engine_core

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def vllm_api(start_api: Callable[..., LocalApi]) -> LocalApi:
    return start_api(ENGINE="vllm", ENFORCE_EAGER="true", STREAM_ENABLED="true", MAX_CONTEXT_TOKENS="2048")


def one(api: LocalApi, payload: dict[str, Any]) -> dict[str, Any]:
    """A job that does not ask to stream runs through the plain handler: one dict, streaming on or off."""
    return api.output(payload)


def test_model_info_says_vllm_serves(vllm_api: LocalApi) -> None:
    info = one(vllm_api, {"action": "admin", "command": "model_info"})
    assert info["success"] is True and info["load"]["engine"] == "vllm" and info["load"]["vllm_version"] == "0.32.0"
    assert info["model_loaded"] is True and info["load"]["kv_cache_tokens"] > 0
    health = one(vllm_api, {"action": "health"})
    assert health["ready"] is True


def test_chat_stateful_chat_and_warmup(vllm_api: LocalApi) -> None:
    first = one(vllm_api, {"action": "chat", "message": "I like tea.", "conversation_id": "v1", "max_tokens": 8})
    again = one(vllm_api, {"action": "chat", "message": "What do I like?", "conversation_id": "v1", "max_tokens": 8})
    assert first["success"] is True and again["success"] is True and again["history_turns_used"] == 2
    assert set(first) == set(again)
    assert one(vllm_api, {"action": "warmup"})["success"] is True


def test_a_streamed_chat_through_run_and_stream(vllm_api: LocalApi) -> None:
    # deltas leave at clause starts once judged: a reply in sentences streams in several
    message = "Tell me about rain in three short sentences."
    payload = {"action": "chat", "message": message, "stream": True, "max_tokens": 64, "temperature": 0}
    job = requests.post(f"{vllm_api.url}/run", json={"input": payload}, timeout=10).json()
    answer = requests.post(f"{vllm_api.url}/stream/{job['id']}", timeout=120).json()
    assert answer["status"] == "COMPLETED"
    items = [chunk["output"] for chunk in answer["stream"]]
    *deltas, last = items
    assert len(deltas) >= 2 and all(set(d) == {"delta"} for d in deltas)
    assert last["success"] is True and "".join(d["delta"] for d in deltas).strip() == last["response"]


def test_enhance_from_the_model(vllm_api: LocalApi) -> None:
    out = one(vllm_api, {"action": "enhance", "prompt": "a red bicycle in the snow", "job_type": "video_fast"})
    assert out["success"] is True and out["enhancement_source"] == "worker_fallback"
    assert "bicycle" in out["enhanced_prompt"]


def test_stopping_the_worker_ends_its_engine_core(vllm_api: LocalApi) -> None:
    """Last in the module: SIGTERM to the worker ends its vLLM engine core too (the SDK's local API
    runs on uvicorn too)."""
    assert_sigterm_ends_its_engine_core(vllm_api.proc)
