"""Worker.shutdown (what every SIGTERM path ends with): the store's queued turns are written, then
the engine is unloaded, since uvicorn's re-raised SIGTERM skips atexit (a vLLM engine core would
outlive the worker; tests/e2e/test_vllm_http_mode.py checks that on a real process)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from handler.app import Worker
from tests.fakes.engine import FakeEngine


def test_shutdown_writes_the_store_back_then_unloads_the_engine(
    make_worker: Callable[..., Worker], fake: FakeEngine
) -> None:
    worker = make_worker()
    fake.load()
    order: list[str] = []
    close = worker.ctx.store.close

    async def closing(grace_s: float) -> int:
        order.append(f"store closed, engine loaded={fake.loaded}")
        return await close(grace_s)

    worker.ctx.store.close = closing  # type: ignore[method-assign]
    assert asyncio.run(worker.shutdown(5.0)) == 0
    assert order == ["store closed, engine loaded=True"] and fake.loaded is False
