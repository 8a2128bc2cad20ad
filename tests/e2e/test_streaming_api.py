"""STREAM_ENABLED=true: the generator handler behind the SDK's local API, real model."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from tests.e2e.conftest import LocalApi

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def streaming(start_api: Callable[..., LocalApi]) -> LocalApi:
    return start_api(STREAM_ENABLED="true")


def test_chat_stream_yields_deltas_then_the_final_output(streaming: LocalApi) -> None:
    items = streaming.output_list(
        {"action": "chat", "message": "Name three colours.", "stream": True, "max_tokens": 24, "temperature": 0.0}
    )
    deltas, final = items[:-1], items[-1]
    assert len(deltas) >= 3 and all(set(d) == {"delta"} for d in deltas)
    assert final["success"] is True
    assert "".join(d["delta"] for d in deltas).strip() == final["response"]


def test_other_jobs_yield_exactly_one_item(streaming: LocalApi) -> None:
    assert len(streaming.output_list({"action": "health"})) == 1
    items = streaming.output_list({"action": "chat", "message": "hi", "max_tokens": 4})
    assert len(items) == 1 and items[0]["success"] is True


def test_run_then_stream_endpoint(streaming: LocalApi) -> None:
    job = requests.post(
        f"{streaming.url}/run",
        json={"input": {"action": "chat", "message": "Hello", "stream": True, "max_tokens": 8}},
        timeout=10,
    ).json()
    answer = requests.post(f"{streaming.url}/stream/{job['id']}", timeout=120).json()
    assert answer["status"] == "COMPLETED"
    assert answer["stream"][-1]["output"]["success"] is True
