"""Shared fixtures: a worker on the scriptable fake engine for fast unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from handler.app import Worker
from handler.http.app import build_app
from shared.settings import Settings, load_settings
from shared.store import MemoryStore
from tests.fakes.engine import FakeEngine

ADMIN = "test-admin-token"


def make_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {"admin_token": ADMIN, "upstash_redis_rest_url": None, "upstash_redis_rest_token": None}
    base.update(overrides)
    return load_settings(**base)


def run(worker: Worker, payload: Any) -> dict[str, Any]:
    return asyncio.run(worker.handle({"id": "test", "input": payload}))


@pytest.fixture
def fake() -> FakeEngine:
    return FakeEngine(default="a friendly reply")


@pytest.fixture
def make_worker(fake: FakeEngine) -> Callable[..., Worker]:
    def build(engine: FakeEngine | None = None, **overrides: Any) -> Worker:
        settings = make_settings(**overrides)
        store = MemoryStore(max_turns=settings.max_history_turns, cache_size=settings.enhance_cache_size)
        return Worker(settings, engine or fake, store)

    return build


@pytest.fixture
def worker(make_worker: Callable[..., Worker]) -> Worker:
    return make_worker()


async def ready_now() -> None:
    """HTTP mode's readiness hook for an app whose worker is already built."""
    return None


def call(worker: Worker, method: str, path: str, **kw: Any) -> httpx.Response:
    """One request to HTTP mode's ASGI app in-process, through httpx."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(worker, ready_now))
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            return await client.request(method, path, **kw)

    return asyncio.run(go())
