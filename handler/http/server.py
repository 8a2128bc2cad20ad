"""`python -m handler` with WORKER_MODE=http: serve the ASGI app with uvicorn on HOST:PORT."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from handler.app import Worker
from handler.http.app import Readiness, build_app, build_health_app
from handler.http.deadline import with_head_deadline
from handler.shutdown import Grace, flush_on_lifespan_shutdown
from shared.settings import Settings

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

    warning = exposure_warning(settings)
    if warning:
        log.warning(warning)
    readiness = Readiness()
    app = build_app(worker, prepare, readiness)
    grace = Grace(settings.shutdown_grace_s)  # SIGTERM: requests in flight get half, then queued turns are written
    flush_on_lifespan_shutdown(app, worker, grace)
    # The RunPod SDK turns uvicorn's loggers down to WARNING on import; HTTP mode wants the
    # start-up lines and the access log (method, path, status: never bodies or headers).
    logging.getLogger("uvicorn").setLevel(settings.log_level)
    logging.getLogger("uvicorn.access").addFilter(_not_ping)
    main = _MainServer(_config(app, settings.host, settings.port, settings.http_read_timeout_s), grace)
    main.config.timeout_graceful_shutdown = int(settings.shutdown_grace_s // 2)  # not 30 s: past RunPod's own grace
    if settings.port_health in (None, settings.port):
        main.run()
        return 0
    health = _HealthServer(
        _config(build_health_app(worker, readiness), settings.host, settings.port_health, settings.http_read_timeout_s)
    )
    asyncio.run(_serve_both(main, health))
    return 0


def exposure_warning(settings: Settings) -> str | None:
    """Listening beyond this machine with no HTTP_AUTH_TOKEN: anyone who reaches the port is served."""
    token = settings.http_auth_token.get_secret_value() if settings.http_auth_token else ""
    if token or _loopback(settings.host):
        return None
    return (
        f"HTTP mode listens on {settings.host}:{settings.port} without HTTP_AUTH_TOKEN: every route answers "
        "anyone who can reach this port. Fine behind RunPod's load balancer (its API key guards the endpoint); "
        "anywhere else set HTTP_AUTH_TOKEN."
    )


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _not_ping(record: logging.LogRecord) -> bool:
    """The load balancer probes /ping every few seconds: not worth a log line each."""
    args = record.args if isinstance(record.args, tuple) else ()
    return not (len(args) > 2 and args[2] == "/ping")


def _config(app: Any, host: str, port: int, read_timeout_s: float) -> uvicorn.Config:
    # log_config=None: uvicorn logs through the worker's own logging set-up. A request head that
    # is not whole within HTTP_READ_TIMEOUT_S is answered 408 (the body's deadline is BodyLimit's).
    http = with_head_deadline(read_timeout_s)
    return uvicorn.Config(app, host=host, port=port, log_config=None, timeout_graceful_shutdown=30, http=http)


class _MainServer(uvicorn.Server):
    """Owns the signals; the shutdown's grace period starts at the first one."""

    def __init__(self, config: uvicorn.Config, grace: Grace) -> None:
        super().__init__(config)
        self.grace = grace

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.grace.start()
        super().handle_exit(sig, frame)


class _HealthServer(uvicorn.Server):
    """Serves /ping on PORT_HEALTH; the main server owns the signals and stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve_both(main: uvicorn.Server, health: uvicorn.Server) -> None:
    probe = asyncio.create_task(health.serve())
    try:
        await main.serve()
    finally:
        health.should_exit = True
        await probe
