"""Streaming on (the default): jobs that ask to stream run through the generator handler behind the SDK's local
API, every other job through the plain handler with the same output as with streaming off; real model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import LocalApi

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def streaming(api: LocalApi) -> LocalApi:
    return api  # STREAM_ENABLED unset: on by default


@pytest.fixture(scope="module")
def not_streaming(start_api: Callable[..., LocalApi]) -> LocalApi:
    return start_api(STREAM_ENABLED="false", MAX_CONTEXT_TOKENS="1024")


def test_chat_stream_yields_deltas_then_the_final_output(streaming: LocalApi) -> None:
    # Deltas leave at clause starts once the guard has judged them (docs/CONTENT_POLICY.md), so the
    # reply is asked for in sentences: its greedy text has three.
    message = "Tell me about rain in three short sentences."
    items = streaming.output_list(
        {"action": "chat", "message": message, "stream": True, "max_tokens": 64, "temperature": 0.0}
    )
    deltas, final = items[:-1], items[-1]
    assert len(deltas) >= 2 and all(set(d) == {"delta"} for d in deltas)
    assert final["success"] is True
    assert "".join(d["delta"] for d in deltas) == final["response"]


GREEDY = {"action": "chat", "message": "Name a colour.", "max_tokens": 8, "temperature": 0.0}
VARYING = ("generation_time", "message_id", "conversation_id", "created_at", "timestamp")


def run_then_status(api: LocalApi, payload: dict[str, Any]) -> dict[str, Any]:
    submitted = requests.post(f"{api.url}/run", json={"input": payload}, timeout=10).json()
    return dict(requests.post(f"{api.url}/status/{submitted['id']}", timeout=120).json())


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return {k: v for k, v in a.items() if k not in VARYING} == {k: v for k, v in b.items() if k not in VARYING}


def test_jobs_that_do_not_stream_answer_as_with_streaming_off(streaming: LocalApi, not_streaming: LocalApi) -> None:
    for payload in ({"action": "health"}, GREEDY, {**GREEDY, "stream": False}):
        on, off = streaming.runsync(payload), not_streaming.runsync(payload)
        assert on["status"] == off["status"] == "COMPLETED" and isinstance(on["output"], dict)
        assert set(on["output"]) == set(off["output"])
    on, off = streaming.output(GREEDY), not_streaming.output(GREEDY)
    assert same(on, off) and on["response"] == off["response"]
    on_status, off_status = run_then_status(streaming, GREEDY), run_then_status(not_streaming, GREEDY)
    assert on_status["status"] == off_status["status"] == "COMPLETED"
    assert same(on_status["output"], off_status["output"])
    failed = streaming.runsync({"action": "chat"})
    assert failed == {**not_streaming.runsync({"action": "chat"}), "id": failed["id"]}


def test_run_then_stream_endpoint(streaming: LocalApi) -> None:
    job = requests.post(
        f"{streaming.url}/run",
        json={"input": {"action": "chat", "message": "Hello", "stream": True, "max_tokens": 8}},
        timeout=10,
    ).json()
    answer = requests.post(f"{streaming.url}/stream/{job['id']}", timeout=120).json()
    assert answer["status"] == "COMPLETED"
    assert answer["stream"][-1]["output"]["success"] is True


# ---- a refusal mid-reply -------------------------------------------------------------------
# A test-only POLICY_DIR makes ordinary words the model writes a few sentences into its greedy
# story count as sexual terms; the message names a minor ("kid"), so a reply with them is refused.
STORY = {"action": "chat", "message": "Write a long story for my kid about a dragon.", "temperature": 0.0}
REFUSED = ("magnificent", "creature", "scales")


@pytest.fixture(scope="module")
def refusing(start_api: Callable[..., LocalApi], tmp_path_factory: pytest.TempPathFactory) -> LocalApi:
    policy_dir: Path = tmp_path_factory.mktemp("policy")
    (policy_dir / "sexual_terms.txt").write_text("\n".join(REFUSED) + "\n", encoding="utf-8")
    return start_api(POLICY_DIR=str(policy_dir))


def tokens_generated(api: LocalApi) -> int:
    info = api.output({"action": "model_info"})
    return int(info["load"]["scheduler"]["tokens_generated"])


def test_a_refused_word_never_leaves_and_generation_stops(refusing: LocalApi) -> None:
    max_tokens = 160
    before = tokens_generated(refusing)
    items: list[dict[str, Any]] = refusing.output_list({**STORY, "stream": True, "max_tokens": max_tokens})
    deltas, last = items[:-1], items[-1]
    sent = "".join(d["delta"] for d in deltas).lower()
    assert all(set(d) == {"delta"} for d in deltas)
    assert not any(word in sent for word in REFUSED)
    assert last["success"] is False and last["error_code"] == "content_policy_violation"
    # One more job through the one model thread: the refused row has finished or stopped by now.
    hi = refusing.output({"action": "chat", "message": "Hi", "max_tokens": 4})
    generated = tokens_generated(refusing) - before - hi["usage"]["completion_tokens"]
    assert generated < max_tokens // 2  # the words come about 25 tokens in; the row stopped there
