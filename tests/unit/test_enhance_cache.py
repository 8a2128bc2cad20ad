"""The service returns an Enhancement; the cache holds it serialised under a version, and an
entry in any other form (an older worker's wire body, a damaged value) is a miss, never a crash."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from handler.app import Worker
from shared.enhance import Enhancement
from shared.enhance.result import ENTRY_VERSION, from_entry, to_entry
from shared.schemas.enhance import EnhanceRequest
from shared.store import MemoryStore
from tests.conftest import run
from tests.fakes.engine import FakeEngine

GOOD_TAGS = "red dress, golden hour lighting, city street, bokeh, 85mm, photorealistic"
PAYLOAD = {"action": "enhance", "prompt": "woman in a red dress", "seed": 7}
# What the worker before v3 stored for PAYLOAD: its wire body (the golden output less cache_hit).
GOLDEN = Path(__file__).parent.parent / "data" / "enhance_wire_golden.json"


def service_result(worker: Worker, **fields: Any) -> Enhancement:
    request = EnhanceRequest.model_validate({"prompt": "woman in a red dress", "seed": 7, **fields})
    return asyncio.run(worker.ctx.enhance.enhance(request))


def only_key(worker: Worker) -> str:
    store = worker.ctx.store
    assert isinstance(store, MemoryStore)
    keys = [k for k in store._cache if k.startswith("enh:")]  # the in-process store
    assert len(keys) == 1
    return keys[0]


def put(worker: Worker, key: str, entry: Any) -> None:
    asyncio.run(worker.ctx.store.cache_put(key, entry))


def stored(worker: Worker, key: str) -> Any:
    store = worker.ctx.store
    assert isinstance(store, MemoryStore)
    return store._cache[key][0]  # without counting a hit


def test_service_returns_a_frozen_enhancement(worker: Worker, fake: FakeEngine) -> None:
    fake.default = GOOD_TAGS
    result = service_result(worker)
    assert isinstance(result, Enhancement) and result.source == "worker_fallback" and not result.cache_hit
    assert result.family == "sdxl" and "lighting" in result.indicators and result.tokens.limit == 75
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.enhanced_prompt = "x"  # type: ignore[misc]
    assert service_result(worker) == dataclasses.replace(result, cache_hit=True)


def test_cache_holds_the_versioned_domain_object(worker: Worker, fake: FakeEngine) -> None:
    fake.default = GOOD_TAGS
    result = service_result(worker)
    key = only_key(worker)
    assert key.startswith(f"enh:v{ENTRY_VERSION}:") and ENTRY_VERSION == 3
    entry = stored(worker, key)
    assert entry["v"] == 3 and "enhanced_prompt" not in entry and "success" not in entry
    assert entry["enhancement"]["enhanced_prompt"] == result.enhanced_prompt
    assert "cache_hit" not in entry["enhancement"]
    through_json = json.loads(json.dumps(entry))  # what the Upstash store reads back
    assert from_entry(through_json) == from_entry(entry) == dataclasses.replace(result, cache_hit=True)


def test_old_format_wire_body_is_a_miss_and_is_replaced(worker: Worker, fake: FakeEngine) -> None:
    fake.default = GOOD_TAGS
    first = run(worker, PAYLOAD)
    key = only_key(worker)
    old_body = dict(json.loads(GOLDEN.read_text())["sdxl_fast_model_then_hit"][0]["output"])
    del old_body["cache_hit"]
    put(worker, key, old_body)
    calls = len(fake.history)
    again = run(worker, PAYLOAD)
    assert again["success"] is True and again["cache_hit"] is False
    assert len(fake.history) == calls + 1  # the model ran again
    assert again["enhanced_prompt"] == first["enhanced_prompt"]
    assert stored(worker, key)["v"] == ENTRY_VERSION  # the miss's put replaced the old body
    assert run(worker, PAYLOAD)["cache_hit"] is True


def test_unreadable_entry_counts_as_a_miss_not_a_hit(worker: Worker, fake: FakeEngine) -> None:
    fake.default = GOOD_TAGS
    run(worker, PAYLOAD)
    key = only_key(worker)
    old_body = dict(json.loads(GOLDEN.read_text())["sdxl_fast_model_then_hit"][0]["output"])
    put(worker, key, old_body)
    before = run(worker, {"action": "enhancement_info"})
    assert run(worker, PAYLOAD)["cache_hit"] is False
    after = run(worker, {"action": "enhancement_info"})
    assert (after["cache_hits"], after["cache_misses"]) == (before["cache_hits"], before["cache_misses"] + 1)
    assert run(worker, PAYLOAD)["cache_hit"] is True  # the miss's put replaced it: a real hit counts
    assert run(worker, {"action": "enhancement_info"})["cache_hits"] == before["cache_hits"] + 1


@pytest.mark.parametrize(
    "damage",
    [
        lambda e: None,  # not an object
        lambda e: {**e, "v": 2},
        lambda e: {"v": e["v"]},
        lambda e: {**e, "enhancement": "text"},
        lambda e: {**e, "enhancement": {k: v for k, v in e["enhancement"].items() if k != "tokens"}},
        lambda e: {**e, "enhancement": {**e["enhancement"], "tokens": {"limit": "many"}}},
        lambda e: {**e, "enhancement": {**e["enhancement"], "source": "a guess"}},
        lambda e: {**e, "enhancement": {**e["enhancement"], "enhanced_prompt": 5}},
    ],
)
def test_damaged_entry_is_a_miss(worker: Worker, fake: FakeEngine, damage: Any) -> None:
    fake.default = GOOD_TAGS
    run(worker, PAYLOAD)
    key = only_key(worker)
    entry = stored(worker, key)
    assert from_entry(damage(entry)) is None
    put(worker, key, damage(entry))
    out = run(worker, PAYLOAD)
    assert out["success"] is True and out["cache_hit"] is False


def test_round_trip_keeps_every_field(make_worker: Any) -> None:
    worker = make_worker(FakeEngine().enqueue(RuntimeError("x")))
    fallback = service_result(worker, job_type="video_fast")  # warnings, wan family, rule_based
    assert fallback.warnings and fallback.source == "rule_based"
    assert from_entry(json.loads(json.dumps(to_entry(fallback)))) == dataclasses.replace(fallback, cache_hit=True)
