"""Golden wire output of enhance, through the RunPod handler and HTTP mode, on the fake engine.

The golden file was written from the code before the service returned a domain object: every
key, its order and every value must stay the same on the wire. Only `generation_time` varies
from run to run; it is checked for type and position, and a cache hit must repeat the miss's.
`python -m tests.unit.test_enhance_wire --write` rewrites the golden file (review the diff).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from handler.app import Worker
from handler.http.app import build_app
from shared.store import MemoryStore, StoreHealth
from tests.conftest import make_settings
from tests.fakes.engine import FakeEngine

GOLDEN = Path(__file__).parent.parent / "data" / "enhance_wire_golden.json"
TAGS = "red dress, golden hour lighting, city street, bokeh, 85mm, photorealistic"
PARAGRAPH = "A cat leaps through tall grass. The camera pans as the sun sets behind the hills."
ROUTES = {"enhance": "/enhance", "enhance_intelligent": "/enhance/intelligent", "enhance_legacy": "/enhance/legacy"}
LONG = ", ".join(f"(ornate detail {i}:1.2)" for i in range(30))

# name -> (settings overrides, engine default reply or a failure, [(action, payload), ...]); one worker per case
CASES: dict[str, tuple[dict[str, Any], Any, list[tuple[str, dict[str, Any]]]]] = {
    "sdxl_fast_model_then_hit": (
        {},
        TAGS,
        [("enhance", {"prompt": "woman in a red dress", "seed": 7})] * 2,
    ),
    "sdxl_high_syntax": (
        {},
        "red fox:1.3, foxy, blurry, snow, forest, golden hour, sharp focus",
        [("enhance", {"prompt": "(red fox:1.3), [blurry background], <lora:foxy:0.8>", "job_type": "sdxl_image_high"})],
    ),
    "video_modes_and_hits": (
        {},
        PARAGRAPH,
        [
            ("enhance_intelligent", {"prompt": "a cat chasing a butterfly", "job_type": "video_fast", "seed": 3}),
            ("enhance_legacy", {"prompt": "a cat chasing a butterfly", "job_type": "video_high", "quality": "high"}),
            ("enhance_legacy", {"prompt": "a cat chasing a butterfly", "job_type": "video_high", "quality": "high"}),
            ("enhance", {"prompt": "a cat chasing a butterfly", "job_type": "wan_7b_enhanced", "seed": 1}),
        ],
    ),
    "edge_function_with_context": (
        {},
        TAGS,
        [
            (
                "enhance",
                {
                    "prompt": "woman in a red dress",
                    "system_prompt": "PLATFORM PROMPT",
                    "context": {"style": "noir", "mood": {"tone": "calm"}},
                    "enhancement_type": "auto",
                },
            )
        ],
    ),
    "rule_based_fallback_not_cached": (
        {},
        RuntimeError("boom"),
        [("enhance", {"prompt": "a lighthouse in a storm", "seed": 2})] * 2,
    ),
    "unusable_output_legacy": (
        {},
        "I'm sorry, I can't help with that.",
        [("enhance_legacy", {"prompt": "castle on a hill"})],
    ),
    "adult_mode": (
        {"adult_content_enabled": True},
        "nude woman, soft studio light, detailed skin",
        [("enhance", {"prompt": "nude woman on a beach", "seed": 4}), ("enhance", {"prompt": "nude woman on a beach"})],
    ),
    "adult_disabled_rating": (
        {},
        "nude woman, soft studio light, detailed skin",
        [("enhance", {"prompt": "nude woman on a beach", "seed": 4, "job_type": "video_fast"})],
    ),
    "over_budget": ({}, TAGS, [("enhance", {"prompt": LONG, "seed": 9})]),
    "cache_off": ({"enhance_cache_size": 0}, TAGS, [("enhance", {"prompt": "castle", "seed": 5})] * 2),
    "failures": (
        {},
        TAGS,
        [
            ("enhance", {"prompt": "cat", "job_type": "gif"}),
            ("enhance", {"prompt": "naked 12 year old"}),
            ("enhance_legacy", {"prompt": 5}),
        ],
    ),
}


class DegradedSharedStore(MemoryStore):
    """A shared store that answers but says it is degraded: its warning reaches the output."""

    def health(self) -> StoreHealth:
        return StoreHealth(backend="upstash", shared=True, ok=False, warning="shared store unreachable; local only")


def make_worker(overrides: dict[str, Any], reply: Any, store: MemoryStore | None = None) -> Worker:
    settings = make_settings(**overrides)
    engine = FakeEngine(default=reply) if isinstance(reply, str) else FakeEngine().enqueue(*[reply] * 8)
    store = store or MemoryStore(max_turns=settings.max_history_turns, cache_size=settings.enhance_cache_size)
    return Worker(settings, engine, store)


def via_handler(worker: Worker, steps: list[tuple[str, dict[str, Any]]]) -> list[tuple[int, bytes]]:
    async def go() -> list[tuple[int, bytes]]:
        outs = [await worker.handle({"id": "golden", "input": {**p, "action": a}}) for a, p in steps]
        return [(200, wire(out)) for out in outs]

    return asyncio.run(go())


def via_http(worker: Worker, steps: list[tuple[str, dict[str, Any]]]) -> list[tuple[int, bytes]]:
    async def ready() -> None:
        return None

    async def go() -> list[tuple[int, bytes]]:
        transport = httpx.ASGITransport(app=build_app(worker, ready))
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            responses = [await client.post(ROUTES[a], json=p) for a, p in steps]
        return [(r.status_code, r.content) for r in responses]

    return asyncio.run(go())


def wire(out: dict[str, Any]) -> bytes:
    """Starlette's JSONResponse rendering, the bytes HTTP mode sends."""
    return json.dumps(out, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


def normalised(raw: bytes) -> dict[str, Any]:
    """The output with this run's `generation_time` (when it has one) set to 0.0, in its place."""
    out: dict[str, Any] = json.loads(raw)
    return {**out, "generation_time": 0.0} if "generation_time" in out else out


def golden() -> dict[str, list[dict[str, Any]]]:
    data: dict[str, list[dict[str, Any]]] = json.loads(GOLDEN.read_text())
    return data


def check(name: str, got: list[tuple[int, bytes]], http: bool) -> None:
    """Byte-for-byte: the expected output carries this run's time where the golden has one."""
    expected = golden()[name]
    assert len(got) == len(expected)
    for (status, raw), want in zip(got, expected, strict=True):
        output = dict(want["output"])
        if "generation_time" in output:
            output["generation_time"] = json.loads(raw)["generation_time"]  # KeyError: the key went missing
            assert isinstance(output["generation_time"], float) and output["generation_time"] >= 0
        assert raw == wire(output), (name, raw)
        assert status == (want["http_status"] if http else 200)


@pytest.mark.parametrize("name", sorted(CASES))
def test_handler_wire_output_matches_golden(name: str) -> None:
    overrides, reply, steps = CASES[name]
    check(name, via_handler(make_worker(overrides, reply), steps), http=False)


@pytest.mark.parametrize("name", sorted(CASES))
def test_http_wire_output_matches_golden(name: str) -> None:
    overrides, reply, steps = CASES[name]
    check(name, via_http(make_worker(overrides, reply), steps), http=True)


def test_cache_hit_repeats_the_stored_time() -> None:
    overrides, reply, steps = CASES["sdxl_fast_model_then_hit"]
    first, hit = (json.loads(raw) for _, raw in via_handler(make_worker(overrides, reply), steps))
    assert (first["cache_hit"], hit["cache_hit"]) == (False, True)
    assert first["generation_time"] == hit["generation_time"]


def test_golden_failures_have_their_http_statuses() -> None:
    assert [step["http_status"] for step in golden()["failures"]] == [400, 422, 400]


def test_degraded_shared_store_warning_matches_golden() -> None:
    settings = make_settings()
    store = DegradedSharedStore(max_turns=settings.max_history_turns, cache_size=settings.enhance_cache_size)
    steps = [("enhance", {"prompt": "woman in a red dress", "seed": 7})] * 2
    check("degraded_shared_store", via_handler(make_worker({}, TAGS, store), steps), http=False)


def record(got: list[tuple[int, bytes]], statuses: list[tuple[int, bytes]]) -> list[dict[str, Any]]:
    pairs = zip(got, statuses, strict=True)
    return [{"http_status": status, "output": normalised(raw)} for (_, raw), (status, _) in pairs]


def write() -> None:
    """Record the current outputs (handler path; HTTP statuses from HTTP mode) as the golden file."""
    data: dict[str, list[dict[str, Any]]] = {}
    for name, (overrides, reply, steps) in sorted(CASES.items()):
        statuses = via_http(make_worker(overrides, reply), steps)
        data[name] = record(via_handler(make_worker(overrides, reply), steps), statuses)
    settings = make_settings()
    store = DegradedSharedStore(max_turns=settings.max_history_turns, cache_size=settings.enhance_cache_size)
    steps = [("enhance", {"prompt": "woman in a red dress", "seed": 7})] * 2
    got = via_handler(make_worker({}, TAGS, store), steps)
    data["degraded_shared_store"] = record(got, [(200, b"")] * 2)
    GOLDEN.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__" and "--write" in sys.argv:
    write()
