"""`python -m handler` with WORKER_MODE=http: serve the ASGI app with uvicorn on HOST:PORT."""

from __future__ import annotations

import asyncio
import logging
import time

import uvicorn

from handler.app import Worker
from handler.http.app import build_app

log = logging.getLogger("handler.http")


def serve(worker: Worker, process_started: float) -> int:
    settings = worker.ctx.settings

    async def prepare() -> None:
        gate = settings.test_only_load_gate
        while gate is not None and not gate.exists():  # lets a test see /ping before the model is ready
            await asyncio.sleep(0.1)
        await asyncio.to_thread(worker.ctx.engine.load)
        if settings.torch_compile:  # pay the compile before /ping says ready
            await worker.handle({"id": "startup", "input": {"action": "warmup"}})
        worker.ctx.stats.load_time_s = round(time.perf_counter() - process_started, 3)
        log.info("ready in %.2fs: serving http://%s:%d", worker.ctx.stats.load_time_s, settings.host, settings.port)

    app = build_app(worker, prepare)
    # The RunPod SDK turns uvicorn's loggers down to WARNING on import; HTTP mode wants the
    # start-up lines and the access log (method, path, status: never bodies or headers).
    logging.getLogger("uvicorn").setLevel(settings.log_level)
    # log_config=None: uvicorn logs through the worker's own logging set-up (paths and codes, no bodies).
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, timeout_graceful_shutdown=30)
    uvicorn.Server(config).run()
    return 0
