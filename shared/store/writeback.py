"""The write-back driver: one background task per worker writes queued turns to the shared store.

Requests only queue their turns and wake the driver; they never wait on a write, their own or
another conversation's. The driver writes every queued conversation, at most `concurrency` at
once, one write at a time per conversation; after a failure it sleeps until the store's back-off
ends and tries again by itself (no new request needed), and it ends when the queue is empty.
`drain` is the shutdown path: write until the queue is empty or a deadline passes.

Hand-written rather than a task-queue library: the queue must stay ordered per conversation,
remove exactly what a write stored (by turn id) and be bounded in turns (pending.py), which is
a few lines here and none of what general task queues offer.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable

from shared.store.base import Turn
from shared.store.pending import ConversationKey, PendingTurns
from shared.store.redis_call import RedisUnavailable

log = logging.getLogger("shared.store.upstash")
Write = Callable[[ConversationKey, list[Turn]], Awaitable[None]]
IDLE_RETRY_S = 0.5  # with no back-off at all (REDIS_RETRY_AFTER_S=0), a failing store is retried this often


class WriteBack:
    def __init__(
        self, pending: PendingTurns, write: Write, backoff_left: Callable[[], float], concurrency: int = 8
    ) -> None:
        self.pending = pending
        self._write = write  # raises RedisUnavailable when the store did not take the turns
        self._backoff_left = backoff_left
        self.concurrency = concurrency
        self.written = 0  # turns the store took (or already held) since start
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None

    def kick(self) -> None:
        """Make sure the driver runs on the running loop, and wake it if it waits out a back-off."""
        loop = asyncio.get_running_loop()
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:  # a finished loop's task is gone with it
            self._wake = asyncio.Event()
            # its own empty context: nothing of the request that happened to start it (a job id, a counter)
            self._task = loop.create_task(self._drive(), context=contextvars.Context())
        assert self._wake is not None
        self._wake.set()

    async def _drive(self) -> None:
        while self.pending.total:
            assert self._wake is not None
            self._wake.clear()
            if self._backoff_left() <= 0 and await self._round():
                continue  # everything written that was queued; new turns may have come meanwhile
            with contextlib.suppress(TimeoutError):  # the back-off, or a kick (a request, a test's clock)
                await asyncio.wait_for(self._wake.wait(), max(self._backoff_left(), IDLE_RETRY_S))

    async def _round(self) -> bool:
        """One pass over the queued conversations; False when the store failed."""
        gate = asyncio.Semaphore(self.concurrency)
        failed = False

        async def one(key: ConversationKey) -> None:
            nonlocal failed
            async with gate:
                if failed or self._backoff_left() > 0:
                    failed = True
                    return
                try:
                    while batch := self.pending.peek(key):  # turns queued while a write is in flight go next
                        await self._write(key, batch)
                        self.pending.remove(key, batch)
                        self.written += len(batch)
                except RedisUnavailable:
                    failed = True

        await asyncio.gather(*(one(key) for key in self.pending.conversations()))
        return not failed

    async def drain(self, grace_s: float) -> int:
        """Write until nothing is queued or `grace_s` passes; the turns still queued (0: all written)."""
        deadline = time.monotonic() + grace_s
        while self.pending.total and (left := deadline - time.monotonic()) > 0:
            self.kick()
            assert self._task is not None
            await asyncio.wait({self._task}, timeout=left)
        task = self._task
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            # Cancel until it ends: on Python 3.11 a cancel that meets an inner `wait_for` finishing
            # at the same moment is swallowed (fixed in 3.12), and the driver would retry a failing
            # store for ever while shutdown awaits it (seen once: SIGTERM, Redis away, no exit).
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.1)
            with contextlib.suppress(asyncio.CancelledError):
                task.result()
        return self.pending.total
