"""ASGI guards in front of every route: the optional bearer token and the body size limit.

Refusals use the failure shape of the route family: OpenAI error objects under /v1 and
/openai/v1, the seed's {success: false, error_code, error, field} elsewhere.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handler.status import failure, openai_error
from shared.errors import InvalidInput, Unauthorized, WorkerError

OPEN_PATHS = frozenset({"/ping"})  # RunPod's load balancer probes it without credentials


def refusal(path: str, exc: WorkerError, status: int | None = None) -> JSONResponse:
    is_openai = path.startswith(("/v1/", "/openai/v1/"))
    code, body = openai_error(exc) if is_openai else failure(exc)
    return JSONResponse(body, status_code=status or code)


class BearerAuth:
    """With HTTP_AUTH_TOKEN set, every route but /ping needs it, as `Authorization: Bearer <token>`
    or as `X-Auth-Token` (for gateways whose own key occupies Authorization)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        exc = Unauthorized("a valid bearer token is required", field="authorization")
        await refusal(scope["path"], exc)(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        headers = dict(scope["headers"])
        bearer = headers.get(b"authorization", b"")
        given = [bearer[7:].strip() if bearer[:7].lower() == b"bearer " else b"", headers.get(b"x-auth-token", b"")]
        return any(hmac.compare_digest(g, self.token) for g in given if g)


class BodyLimit:
    """Bodies over the limit are refused with 413 before the route sees them, and bodies that do
    not arrive within `timeout_s` (a trickled or stalled upload) with 408, closing the connection.
    The body is read here (chunked uploads too) and replayed to the app, then the original stream
    follows so the app still hears a disconnect."""

    def __init__(self, app: ASGIApp, limit: int, timeout_s: float | None = None) -> None:
        self.app, self.limit, self.timeout_s = app, limit, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        over = declared.isdigit() and int(declared) > self.limit
        try:
            async with asyncio.timeout(self.timeout_s):
                body = None if over else await self._read(receive)
        except TimeoutError:
            exc = InvalidInput(f"the request body did not arrive within {self.timeout_s:g} seconds", field="body")
            answer = refusal(scope["path"], exc, status=408)
            answer.headers["connection"] = "close"  # the rest of the body is never read: end the connection
            await answer(scope, receive, send)
            return
        if body is None and not over:
            return  # the client left while sending
        if body is None or len(body) > self.limit:
            exc = InvalidInput(f"the request body is larger than {self.limit} bytes", field="body")
            await refusal(scope["path"], exc, status=413)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes | None:
        chunks: list[Any] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            chunks.append(chunk)
            if size > self.limit:
                return b"".join(chunks)  # over the limit: refused, the rest is not read
            if not message.get("more_body", False):
                return b"".join(chunks)
