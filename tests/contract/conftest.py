"""The engine contract suite: the same tests against every engine, on the real embedded model.

One engine of each kind per test session (`scope="session"`): a vLLM engine's start (its
engine-core process, ~40 s here with ENFORCE_EAGER) is the cost, so every contract test shares
it. Each engine runs in this process and is driven both directly (the Engine contract) and
through an in-process Worker (the handler path services take), on an in-memory store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from handler.app import Worker
from shared.engine import Engine
from shared.engine.factory import build_engine
from shared.settings import Settings, load_settings
from shared.store import MemoryStore

ENGINES = ["transformers", "vllm"]
# Small bounds so the overload test can fill them: the transformers engine refuses beyond
# MAX_QUEUE waiting jobs, the vLLM engine beyond VLLM_MAX_NUM_SEQS + MAX_QUEUE in flight.
LIMITS: dict[str, Any] = {"max_queue": 6, "vllm_max_num_seqs": 6, "max_batch_size": 6}


def engine_settings(name: str, **overrides: Any) -> Settings:
    return load_settings(engine=name, upstash_redis_rest_url=None, upstash_redis_rest_token=None, **LIMITS, **overrides)


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    eng = build_engine(engine_settings(request.param))
    eng.load()
    yield eng
    eng.unload()


def worker_on(engine: Engine, **overrides: Any) -> Worker:
    """A Worker on the session's engine (its own store and policy; `overrides` are settings)."""
    settings = engine_settings(engine.info().extra["engine"], **overrides)
    store = MemoryStore(max_turns=settings.max_history_turns, cache_size=settings.enhance_cache_size)
    return Worker(settings, engine, store)


def run(worker: Worker, payload: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(worker.handle({"id": "contract", "input": payload}))


def run_stream(worker: Worker, payload: dict[str, Any]) -> list[Any]:
    async def collect() -> list[Any]:
        return [item async for item in worker.handle_stream({"id": "contract", "input": payload})]

    return asyncio.run(collect())


def scheduler(engine: Engine) -> dict[str, Any]:
    return dict(engine.info().extra["scheduler"])
