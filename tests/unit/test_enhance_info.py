"""Golden wire output of the `enhancement_info` admin command, on the fake engine.

The golden file was written from the code before the service returned a domain object for it:
every key, its order and every value must stay the same, through the RunPod handler (the alias
and the admin envelope) and HTTP mode's GET route.
`python -m tests.unit.test_enhance_info --write` rewrites the golden file (review the diff).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from handler.app import Worker
from handler.http.app import build_app
from shared.enhance import EnhanceStatus, JobTypeFacts
from shared.store import MemoryStore, StoreHealth
from tests.conftest import ADMIN, make_settings, run
from tests.unit.test_enhance_wire import TAGS, DegradedSharedStore, make_worker, wire

GOLDEN = Path(__file__).parent.parent / "data" / "enhancement_info_golden.json"
ENHANCE = {"action": "enhance", "prompt": "woman in a red dress", "seed": 7}
INFO = {"action": "enhancement_info"}
UNLOAD = {"action": "admin", "command": "unload", "admin_token": ADMIN}


class HealthySharedStore(MemoryStore):
    """A shared store in good health: the only case where `cache_shared` is true."""

    def health(self) -> StoreHealth:
        return StoreHealth(backend="upstash", shared=True, ok=True)


# name -> (settings overrides, store class or None, jobs run before the info call); one worker per case
CASES: dict[str, tuple[dict[str, Any], type[MemoryStore] | None, list[dict[str, Any]]]] = {
    "fresh": ({}, None, []),
    "miss_then_hit": ({}, None, [ENHANCE, ENHANCE]),
    "adult_enabled_model_unloaded": ({"adult_content_enabled": True}, None, [ENHANCE, UNLOAD]),
    "cache_off": ({"enhance_cache_size": 0}, None, [ENHANCE, ENHANCE]),
    "healthy_shared_store": ({}, HealthySharedStore, [ENHANCE]),
    "degraded_shared_store": ({}, DegradedSharedStore, [ENHANCE]),
}


def build(name: str) -> Worker:
    overrides, store_class, _ = CASES[name]
    if store_class is None:
        return make_worker(overrides, TAGS)
    settings = make_settings(**overrides)
    return make_worker(overrides, TAGS, store_class(settings.max_history_turns, cache_size=settings.enhance_cache_size))


def steps(name: str) -> list[dict[str, Any]]:
    return CASES[name][2]


def via_handler(name: str, request: dict[str, Any]) -> bytes:
    worker = build(name)

    async def go() -> dict[str, Any]:
        for payload in steps(name):
            await worker.handle({"id": "before", "input": payload})
        return await worker.handle({"id": "golden", "input": request})

    return wire(asyncio.run(go()))


def via_http(name: str) -> tuple[int, bytes]:
    worker = build(name)

    async def ready() -> None:
        return None

    async def go() -> httpx.Response:
        for payload in steps(name):
            await worker.handle({"id": "before", "input": payload})
        transport = httpx.ASGITransport(app=build_app(worker, ready))
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            return await client.get("/enhancement/info")

    response = asyncio.run(go())
    return response.status_code, response.content


NAMES = sorted(CASES)


def golden() -> dict[str, str]:
    data: dict[str, str] = json.loads(GOLDEN.read_text())
    return data


@pytest.mark.parametrize("name", NAMES)
def test_alias_matches_golden_bytes(name: str) -> None:
    assert via_handler(name, INFO).decode() == golden()[name]


@pytest.mark.parametrize("name", NAMES)
def test_admin_envelope_matches_golden_bytes(name: str) -> None:
    request = {"action": "admin", "command": "enhancement_info"}
    assert via_handler(name, request).decode() == golden()[name]


@pytest.mark.parametrize("name", ["fresh", "miss_then_hit"])
def test_http_get_matches_golden_bytes(name: str) -> None:
    assert via_http(name) == (200, golden()[name].encode())


def test_golden_cases_differ_where_they_should() -> None:
    """The cases exercise every fact: counts, cache on/off, shared flag, model state, adult mode."""
    data = {name: json.loads(raw) for name, raw in golden().items()}
    assert (data["fresh"]["cache_hits"], data["fresh"]["cache_misses"], data["fresh"]["cache_size"]) == (0, 0, 0)
    hit = data["miss_then_hit"]
    assert (hit["cache_hits"], hit["cache_misses"], hit["cache_size"]) == (1, 1, 1)
    assert data["cache_off"]["cache_size"] == 0 and data["cache_off"]["cache_misses"] == 0
    adult = data["adult_enabled_model_unloaded"]
    assert adult["model_status"] == "not_loaded" and adult["nsfw_optimization"] == "enabled"
    assert adult["policy"]["adult_content_enabled"] is True and data["fresh"]["model_status"] == "loaded"
    assert data["degraded_shared_store"]["cache_shared"] is False and data["fresh"]["cache_shared"] is False
    assert data["healthy_shared_store"]["cache_shared"] is True


def test_service_returns_a_frozen_status(make_worker: Any) -> None:
    worker = make_worker(adult_content_enabled=True)
    status = asyncio.run(worker.ctx.enhance.info())
    assert isinstance(status, EnhanceStatus) and status.adult_enabled and status.model_loaded
    assert (status.cache_size, status.cache_hits, status.cache_misses, status.cache_shared) == (0, 0, 0, False)
    fast = next(j for j in status.job_types if j.name == "sdxl_image_fast")
    assert fast == JobTypeFacts("sdxl_image_fast", "sdxl", "clip-vit-l-14-bpe", 75, (50, 75), "tags", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        status.cache_hits = 9  # type: ignore[misc]


def test_operator_job_type_keeps_file_order_and_sorted_supported_list(make_worker: Any, tmp_path: Path) -> None:
    """`job_types` follows the profiles (built-in, then the operator's); `supported_job_types` is sorted."""
    from shared.enhance.profiles import PROFILES_FILE

    base = json.loads(PROFILES_FILE.read_text())["profiles"]["sdxl_image_fast"]
    (tmp_path / "p.json").write_text(json.dumps({"profiles": {"sdxl_square": {**base, "token_limit": 40}}}))
    info = run(make_worker(profiles_file=tmp_path / "p.json"), INFO)
    assert list(info["job_types"])[-1] == "sdxl_square" and info["job_types"]["sdxl_square"]["token_limit"] == 40
    assert info["supported_job_types"] == sorted(info["job_types"]) != list(info["job_types"])


def write() -> None:
    """Record the current handler outputs, as the exact bytes sent, as the golden file."""
    data = {name: via_handler(name, INFO).decode() for name in NAMES}
    GOLDEN.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__" and "--write" in sys.argv:
    write()
