"""Action `chat` (and `chat_unrestricted`, the seed's /chat/unrestricted)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from handler.context import WorkerContext
from handler.validation import parse
from shared.chat import ChatReply
from shared.chat.stream_guard import close_stream
from shared.schemas.chat import ChatRequest


def _shape(reply: ChatReply) -> dict[str, Any]:
    out: dict[str, Any] = {"success": True, **asdict(reply)}
    if not out["warnings"]:
        out.pop("warnings")
    return out


async def run(ctx: WorkerContext, payload: dict[str, Any], force_adult: bool = False) -> dict[str, Any]:
    request = parse(ChatRequest, payload)
    return _shape(await ctx.chat.chat(request, force_adult=force_adult))


async def run_unrestricted(ctx: WorkerContext, payload: dict[str, Any]) -> dict[str, Any]:
    return await run(ctx, payload, force_adult=True)


async def stream(
    ctx: WorkerContext, payload: dict[str, Any], force_adult: bool = False
) -> AsyncIterator[dict[str, Any]]:
    """Deltas as {"delta": text}, then the usual output as the last item."""
    request = parse(ChatRequest, payload)
    items = ctx.chat.stream(request, force_adult=force_adult)
    try:
        async for item in items:
            yield _shape(item) if isinstance(item, ChatReply) else {"delta": item}
    finally:  # closing this stream closes the service's, which stops the engine's
        await close_stream(items)
