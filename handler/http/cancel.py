"""The cancellation path: when the client goes away, the work it asked for is cancelled
(after vLLM's `with_cancellation`), so an abandoned request stops holding the model."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

T = TypeVar("T")


async def _disconnected(request: Request) -> None:
    # The body has been read already, so the next message is the disconnect (or none at all).
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T | None:
    """The work's result, or None when the client disconnected first (the work is cancelled)."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # the server itself is cancelling this request
        task.cancel()
        raise
    finally:
        watch.cancel()
    if task.done():
        return task.result()
    task.cancel()
    try:  # wait for it to unwind, so what it held (a stream, a queue slot) is released first
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():  # we are being cancelled too: pass it on
            raise
    except Exception:  # noqa: BLE001 - its failure no longer has anyone to answer
        pass
    return None
