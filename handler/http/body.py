"""Request bodies and response headers shared by both routers (seed and OpenAI)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from shared.errors import InvalidInput

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def read_json(request: Request) -> Any:
    """The body parsed as JSON. Whatever the parser refuses (bad bytes, bad syntax, nesting deep
    enough to exhaust the recursion limit) is bad input naming the body, never a 500."""
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidInput("the request body is not valid JSON", field="body") from None


async def read_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; an empty body is {} (the seed's GET and clear routes send none)."""
    if not (await request.body()).strip():
        return {}
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object", field="body")
    return body
