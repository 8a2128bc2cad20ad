"""Queue jobs that carry RunPod's OpenAI passthrough: {"openai_route": ..., "openai_input": {...}}.

Answered as RunPod's vLLM worker answers them: `/v1/models` and a completion are one
object each; with `stream: true` (generator handler) every item is one server-sent event
string ("data: {...}\\n\\n"), the last one "data: [DONE]\\n\\n". Failures before the first
event are the worker's usual failure output (a FAILED job naming code and field); a stream
that fails later ends with an OpenAI error event, as in HTTP mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from handler.openai.serving import OpenAIServing
from shared.errors import InvalidInput

MODELS = "/v1/models"


async def run(serving: OpenAIServing, route: str, body: Any) -> dict[str, Any]:
    """The non-generator handler's answer."""
    if route == MODELS:
        return serving.models()
    req = serving.parse(body)
    if req.stream:
        raise InvalidInput("'stream': true needs the worker's generator handler (STREAM_ENABLED=true)", field="stream")
    return await serving.complete(req)


async def stream(serving: OpenAIServing, route: str, body: Any) -> AsyncIterator[Any]:
    """The generator handler's items."""
    if route == MODELS:
        yield serving.models()
        return
    req = serving.parse(body)
    if not req.stream:
        yield await serving.complete(req)
        return
    async for event in await serving.open_stream(req):
        yield event
