"""The ASGI app for HTTP mode (RunPod load-balancing endpoints).

The model loads in the background once the server listens, so `GET /ping` can say
"initialising" (204) until it is ready (200), as RunPod's load balancer expects; a load
that failed answers 503 so the worker is replaced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from handler.app import Worker
from handler.errors import echo
from handler.http.guards import BearerAuth, BodyLimit, refusal
from handler.http.routes_openai import openai_router
from handler.http.routes_seed import seed_router
from shared.errors import UnknownAction

log = logging.getLogger("handler.http")


@dataclass
class Readiness:
    failed: str | None = None  # why loading failed, if it did


def ping_router(worker: Worker, readiness: Readiness) -> APIRouter:
    """RunPod's load-balancer probe: 204 initialising, 200 ready, anything else unhealthy."""
    router = APIRouter()

    @router.get("/ping")
    async def ping() -> Response:
        # A bare answer, open to anyone: why it failed is in the log and in an authorised /health.
        if readiness.failed:
            return JSONResponse({"status": "failed"}, status_code=503)
        if not worker.ctx.engine.loaded:
            return Response(status_code=204)
        if worker.ctx.engine.problem:  # e.g. the model thread stopped: not ready
            return JSONResponse({"status": "unhealthy"}, status_code=503)
        return JSONResponse({"status": "healthy"})

    return router


def build_app(worker: Worker, prepare: Callable[[], Awaitable[None]], readiness: Readiness | None = None) -> FastAPI:
    """`prepare` loads the model (and warms it up); it runs as a background task at start-up."""
    state = readiness or Readiness()

    async def load() -> None:
        try:
            await prepare()
        except Exception as exc:  # a failed load is reported by /ping, not by a crash
            log.exception("model load failed")
            state.failed = f"{type(exc).__name__}: the model could not be loaded"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(load())
        yield
        task.cancel()

    app = FastAPI(title="chat-worker", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(StarletteHTTPException, _no_route)
    app.include_router(ping_router(worker, state))
    app.include_router(seed_router(worker))
    app.include_router(openai_router(worker.openai))
    settings = worker.ctx.settings
    app.add_middleware(BodyLimit, limit=settings.http_max_body_bytes, timeout_s=settings.http_read_timeout_s)
    if settings.http_auth_token is not None and settings.http_auth_token.get_secret_value():
        app.add_middleware(BearerAuth, token=settings.http_auth_token.get_secret_value())
    return app


async def _no_route(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods fail in the family's own shape, like every other failure."""
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 404
    what = f"no route {request.method} {echo(request.url.path, 200)}"
    return refusal(request.url.path, UnknownAction(what, field="path"), status=status)


def build_health_app(worker: Worker, readiness: Readiness) -> FastAPI:
    """Only /ping, for PORT_HEALTH when it differs from PORT."""
    app = FastAPI(title="chat-worker health", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(ping_router(worker, readiness))
    return app
