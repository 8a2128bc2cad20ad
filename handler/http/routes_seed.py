"""The earlier HTTP worker's routes, one-to-one: each runs the matching action on the seed's body
and answers exactly what that action answers; a failure gets the status that fits its code."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from handler import logs
from handler.app import Worker
from handler.dispatch import STREAMING_ACTIONS
from handler.http.body import SSE_HEADERS, read_json_object
from handler.http.cancel import cancel_on_disconnect
from handler.sse import sse
from handler.status import failure, retry_headers, status_for
from handler.validation import admin_token_valid
from shared.errors import InvalidInput

# (method, path, action): the same table as the README's migration table
SEED_ROUTES: list[tuple[str, str, str]] = [
    ("POST", "/chat", "chat"),
    ("POST", "/chat/unrestricted", "chat_unrestricted"),
    ("POST", "/enhance", "enhance"),
    ("POST", "/enhance/intelligent", "enhance_intelligent"),
    ("POST", "/enhance/legacy", "enhance_legacy"),
    ("GET", "/enhancement/info", "enhancement_info"),
    ("POST", "/enhancement/cache/clear", "cache_clear"),
    ("GET", "/memory/status", "memory_status"),
    ("GET", "/model/info", "model_info"),
    ("GET", "/health", "health"),
    ("POST", "/admin", "admin"),  # every admin command, as the queue endpoint's `admin` action
]


# What these answer (GPU, versions, host RAM, fault text, store details) is for operators: over
# HTTP without HTTP_AUTH_TOKEN they need the admin token, else they answer liveness only.
HOST_DETAILS = frozenset({"health", "model_info", "memory_status"})


def _host_details(action: str, body: dict[str, Any]) -> bool:
    return action in HOST_DETAILS or (action == "admin" and body.get("command") in HOST_DETAILS)


def _may_see_host(worker: Worker, body: dict[str, Any]) -> bool:
    """With HTTP_AUTH_TOKEN set, BearerAuth has admitted only its holders; otherwise the admin token."""
    settings = worker.ctx.settings
    if settings.http_auth_token is not None and settings.http_auth_token.get_secret_value():
        return True
    try:
        return admin_token_valid(settings, body)
    except InvalidInput:  # a malformed token is no token
        return False


def liveness(worker: Worker) -> dict[str, Any]:
    """Live (it answered) and ready (model loaded, no fault): nothing about the machine or why."""
    engine = worker.ctx.engine
    return {
        "success": True,
        "live": True,
        "ready": engine.loaded and not engine.problem,
        "detail": "details need the admin token (X-Admin-Token) or HTTP_AUTH_TOKEN",
    }


def respond(output: dict[str, Any]) -> JSONResponse:
    if output.get("success") is False and "error_code" in output:
        status = status_for(output["error_code"])
        return JSONResponse(output, status_code=status, headers=retry_headers(status))
    return JSONResponse(output)


async def stream(request: Request, worker: Worker, job: dict[str, Any]) -> Response:
    """Chat with `stream: true`: the generator handler's items as server-sent events, each
    `data: {"delta": ...}`, then the usual output; a failure before any text is a plain failure."""
    items = worker.handle_stream(job)
    first = await cancel_on_disconnect(request, anext(items))  # a client gone before any text cancels it
    if first is None:
        await items.aclose()  # type: ignore[attr-defined]
        return Response(status_code=499)
    if first.get("success") is False:
        await items.aclose()  # type: ignore[attr-defined]
        return respond(first)

    async def events() -> AsyncIterator[str]:
        yield sse(first)
        async for item in items:
            yield sse(item)

    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)


def seed_router(worker: Worker) -> APIRouter:
    router = APIRouter()

    def route(action: str) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                body = await read_json_object(request)
            except InvalidInput as exc:
                status, out = failure(exc)
                return JSONResponse(out, status_code=status)
            admin_token = request.headers.get("x-admin-token")
            if admin_token is not None and "admin_token" not in body:
                body["admin_token"] = admin_token
            if _host_details(action, body) and not _may_see_host(worker, body):
                return JSONResponse(liveness(worker))
            job = {"id": f"http-{uuid.uuid4().hex[:12]}", "input": {**body, "action": action}}
            if action in STREAMING_ACTIONS and body.get("stream") is True:
                return await stream(request, worker, job)
            started = time.perf_counter()
            output = await cancel_on_disconnect(request, worker.handle(job))
            if output is None:  # the handler was cancelled before its own log line
                logs.job_done(job, action, None, started)
                return Response(status_code=499)
            return respond(output)

        endpoint.__name__ = f"seed_{action}"
        return endpoint

    for method, path, action in SEED_ROUTES:
        router.add_api_route(path, route(action), methods=[method])
    return router
