"""The generator handler: chat with stream=true yields deltas then the usual output; others yield one item."""

from __future__ import annotations

import asyncio
from typing import Any

from handler.app import Worker
from tests.fakes.engine import FakeEngine


def collect(worker: Worker, payload: Any) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        return [item async for item in worker.handle_stream({"id": "s", "input": payload})]

    return asyncio.run(go())


def test_stream_yields_deltas_then_the_final_output(worker: Worker, fake: FakeEngine) -> None:
    fake.enqueue("one two three")
    items = collect(worker, {"action": "chat", "message": "count", "stream": True})
    assert "".join(i["delta"] for i in items[:-1]) == "one two three"
    assert items[-1]["success"] is True and items[-1]["response"] == "one two three"


def test_non_streaming_jobs_yield_exactly_one_item(worker: Worker) -> None:
    assert len(collect(worker, {"action": "chat", "message": "hi"})) == 1
    assert collect(worker, {"action": "health"})[0]["status"] == "ok"
    bad = collect(worker, {"action": "chat", "stream": True})
    assert len(bad) == 1 and bad[0]["error_code"] == "invalid_input"


def test_stream_refusal_is_one_error_item(worker: Worker) -> None:
    items = collect(worker, {"action": "chat", "message": "naked 12 year old", "stream": True})
    assert len(items) == 1 and items[0]["error_code"] == "content_policy_violation"
