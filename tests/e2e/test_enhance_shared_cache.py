"""The enhancement cache in the shared store (real upstash-redis SDK, the local bridge, a real
Redis): what lands in Redis is the versioned Enhancement, and an older worker's wire body
under the key is a miss, replaced by the new form, which another worker then hits."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handler.app import Worker
from shared.schemas.enhance import EnhanceRequest
from shared.settings import load_settings
from shared.store.upstash import UpstashStore
from tests.e2e.conftest import ADMIN
from tests.e2e.redis_helpers import Bridge
from tests.fakes.engine import FakeEngine

pytestmark = [pytest.mark.e2e, pytest.mark.redis]
TOKEN = "bridge-test-token"
GOOD_TAGS = "red dress, golden hour lighting, city street, bokeh, 85mm, photorealistic"
PAYLOAD = {"action": "enhance", "prompt": "woman in a red dress", "seed": 7}
GOLDEN = Path(__file__).parent.parent / "data" / "enhance_wire_golden.json"


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    b = Bridge("redis://127.0.0.1:6379/0", TOKEN, tmp_path_factory.mktemp("bridge") / "bridge.log")
    yield b
    b.stop()


def worker(bridge: Bridge, prefix: str) -> tuple[Worker, FakeEngine]:
    settings = load_settings(
        upstash_redis_rest_url=bridge.url, upstash_redis_rest_token=TOKEN, redis_key_prefix=prefix, admin_token=ADMIN
    )
    engine = FakeEngine(default=GOOD_TAGS)
    return Worker(settings, engine), engine


def cache_key(w: Worker) -> tuple[UpstashStore, str]:
    """The worker's store and PAYLOAD's key in it (Redis holds it under the store's prefix)."""
    store, service = w.ctx.store, w.ctx.enhance
    assert isinstance(store, UpstashStore)
    req = EnhanceRequest.model_validate({k: v for k, v in PAYLOAD.items() if k != "action"})
    profile = service.profiles.get(req.job_type)
    assert profile is not None
    return store, service.cache_key(req, profile, False)


def test_old_wire_body_in_redis_is_a_miss_then_shared_as_v3(bridge: Bridge) -> None:
    prefix = f"enh-{uuid.uuid4().hex[:8]}"
    (a, engine_a), (b, engine_b) = worker(bridge, prefix), worker(bridge, prefix)
    old_body = dict(json.loads(GOLDEN.read_text())["sdxl_fast_model_then_hit"][0]["output"])
    del old_body["cache_hit"]  # exactly what the worker before v3 stored: its wire body
    store, key = cache_key(a)

    # one loop: the SDK client lives in it
    async def scenario() -> tuple[dict[str, Any], Any, dict[str, Any], list[tuple[int, int]]]:
        await store.cache_put(key, old_body)
        assert json.loads(bridge.command("GET", store.k_cache + key)) == old_body
        first = await a.handle({"input": PAYLOAD})
        missed = await store.cache_stats()  # the old body was a miss in the shared counters too
        entry = json.loads(bridge.command("GET", store.k_cache + key))
        second = await b.handle({"input": PAYLOAD})
        hit = await store.cache_stats()
        return first, entry, second, [(missed.hits, missed.misses), (hit.hits, hit.misses)]

    first, entry, second, counts = asyncio.run(scenario())
    assert counts == [(0, 1), (1, 1)]
    assert first["success"] is True and first["cache_hit"] is False and len(engine_a.history) == 1
    assert entry["v"] == 3 and entry["enhancement"]["enhanced_prompt"] == first["enhanced_prompt"]
    assert second == {**first, "cache_hit": True} and engine_b.history == []
    assert a.ctx.store.health().warning is None  # served by Redis, not by worker memory
