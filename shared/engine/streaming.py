"""Streaming: token ids picked on the model thread become text deltas on the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from shared.engine.base import Generation


class TokenFeed:
    """A thread-safe hand-over of token ids from the model thread to one stream."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.queue: asyncio.Queue[int] = asyncio.Queue()

    def __call__(self, token: int) -> None:
        self._loop.call_soon_threadsafe(self.queue.put_nowait, token)


async def deltas(
    feed: TokenFeed, task: asyncio.Future[Generation], decode: Callable[[list[int]], str]
) -> AsyncIterator[str | Generation]:
    """Text deltas as tokens arrive, then the final Generation."""
    tokens = feed.queue
    ids: list[int] = []
    sent = ""
    while not (task.done() and tokens.empty()):
        getter: asyncio.Future[Any] = asyncio.ensure_future(tokens.get())
        await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
        if not getter.done():
            getter.cancel()
            continue
        ids.append(getter.result())
        text = decode(ids)
        if text.startswith(sent) and not text.endswith("\ufffd"):  # hold back half a UTF-8 character
            if len(text) > len(sent):
                yield text[len(sent) :]
            sent = text
    yield await task
