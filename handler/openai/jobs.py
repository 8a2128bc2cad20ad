"""Queue jobs that carry RunPod's OpenAI passthrough: {"openai_route": ..., "openai_input": {...}}.

Answered as RunPod's vLLM worker answers them: `/v1/models`, `/v1/models/{id}` and a
completion are one object each; with `stream: true` (the generator handler) every item is one
server-sent event string ("data: {...}\\n\\n"), the last one "data: [DONE]\\n\\n". Every failure is
an OpenAI error object {"error": {message, type, param, code}} (RunPod fails a job whose item
carries "error"); a stream that fails after its first event ends with an error event, as in
HTTP mode. `/v1/completions` (text completion) is not served: its error names the chat route.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from handler.openai.serving import NOT_SERVED, OpenAIServing, not_served
from handler.status import openai_error
from shared.errors import InvalidInput

CHAT = "/v1/chat/completions"
MODELS = "/v1/models"
ROUTES = (CHAT, MODELS, f"{MODELS}/{{id}}")


def route_of(payload: dict[str, Any]) -> tuple[str, str | None]:
    """(route, model id for /v1/models/{id}) of a job; InvalidInput naming `openai_route` otherwise."""
    route = payload.get("openai_route")
    path = route.rstrip("/") if isinstance(route, str) else ""
    if path in (CHAT, MODELS):
        return path, None
    if path.startswith(f"{MODELS}/") and len(path) > len(MODELS) + 1:
        return MODELS, path[len(MODELS) + 1 :]
    if path in NOT_SERVED:
        raise not_served(path, "openai_route")
    raise InvalidInput(f"'openai_route' must be one of: {', '.join(ROUTES)}", field="openai_route")


def wants_stream(payload: dict[str, Any]) -> bool:
    body = payload.get("openai_input")
    return isinstance(body, dict) and body.get("stream") is True


async def run(serving: OpenAIServing, payload: dict[str, Any]) -> dict[str, Any]:
    """The plain handler's answer: the object, or an OpenAI error object."""
    try:
        route, model = route_of(payload)
        if route == MODELS:
            return serving.models() if model is None else serving.model(model)
        req = serving.parse(payload.get("openai_input"))
        if req.stream:
            raise InvalidInput(
                "'stream': true needs the worker's generator handler (STREAM_ENABLED=true)", field="stream"
            )
        return await serving.complete(req)
    except Exception as exc:  # noqa: BLE001 - every failure is an OpenAI error object
        return openai_error(exc)[1]


async def stream(serving: OpenAIServing, payload: dict[str, Any]) -> AsyncIterator[Any]:
    """The generator handler's items."""
    try:
        route, model = route_of(payload)
        if route == MODELS:
            yield serving.models() if model is None else serving.model(model)
            return
        req = serving.parse(payload.get("openai_input"))
        events = await serving.open_stream(req) if req.stream else None
        if events is None:
            yield await serving.complete(req)
            return
    except Exception as exc:  # noqa: BLE001 - a failure before the first event is one OpenAI error object
        yield openai_error(exc)[1]
        return
    async for event in events:
        yield event
