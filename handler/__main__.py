"""`python -m handler`: read settings, load the model once, start the RunPod worker
(WORKER_MODE=http: an HTTP server for load-balancing endpoints instead, see handler/http/).

The RunPod SDK's own flags pass through: --test_input '{"input": ...}' runs one job and
exits; --rp_serve_api --rp_api_host 127.0.0.1 --rp_api_port N serves its local API.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

from shared.errors import WorkerError
from shared.settings import load_settings


def main() -> int:
    process_started = time.perf_counter()
    try:
        settings = load_settings()
    except WorkerError as exc:
        print(f"chat-worker: {exc.message}", file=sys.stderr)
        return 2
    from handler import logs

    logs.configure(settings)  # before anything logs: RunPod SDK level, the content switch
    # Threads doing pure-Python work (policy scans of a large input) hand the GIL back to the event
    # loop every 1 ms instead of 5: health and cache hits stay responsive meanwhile.
    sys.setswitchinterval(0.001)
    log = logging.getLogger("handler")

    from handler.app import Worker, build_engine

    try:
        engine = build_engine(settings)
        if settings.worker_mode == "http":  # load-balancing endpoint: the model loads once the server listens
            from handler.http.server import serve

            return serve(Worker(settings, engine), process_started)
        engine.load()  # before the first job: the model stays warm for the life of the process
        worker = Worker(settings, engine)
    except WorkerError as exc:
        print(f"chat-worker: cannot start: {exc.message}", file=sys.stderr)
        return 1
    # With TORCH_COMPILE, engine.load() already compiled (a warm-up generation outside any job
    # timeout); this first job, now fast, marks the worker warm.
    if settings.torch_compile:
        asyncio.run(worker.handle({"id": "startup", "input": {"action": "warmup"}}))
    worker.ctx.stats.load_time_s = round(time.perf_counter() - process_started, 3)
    device = engine.info().device_type
    concurrency = settings.effective_concurrency(device)
    log.info(
        "ready in %.2fs: device=%s concurrency=%d adult_content=%s store=%s stream=%s",
        worker.ctx.stats.load_time_s,
        device,
        concurrency,
        settings.adult_content_enabled,
        worker.ctx.store.backend,
        settings.stream_enabled,
    )

    from handler import serverless, shutdown

    grace = shutdown.Grace(settings.shutdown_grace_s)  # SIGTERM: jobs end, queued turns are written back
    shutdown.hook_sdk(worker, grace)

    # Streaming on (STREAM_ENABLED, default): jobs that ask to stream get the generator handler, the rest the plain one.
    try:
        serverless.start(worker.handle, worker.handle_stream, concurrency, settings.stream_enabled)
    finally:  # --test_input's job (the SDK exits with SystemExit), or anything the hooks left queued
        asyncio.run(worker.shutdown(grace.left()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
