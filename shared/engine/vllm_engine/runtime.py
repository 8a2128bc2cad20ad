"""The engine's own event loop, on its own thread.

AsyncLLM binds its output handler and its ZMQ sockets to the loop it runs in, and vLLM's
advice (and worker-vllm's practice) is to create it inside the loop that serves it. Our
callers live on other loops: the RunPod SDK's job loop, uvicorn's in HTTP mode, a test's
`asyncio.run`, and `load()` is synchronous. So AsyncLLM is created, driven and shut down
on a private loop, and callers hand it coroutines: cancelling the caller's future cancels
the task there, which closes vLLM's request generator, which aborts the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from shared.errors import EngineNotLoaded

T = TypeVar("T")


class EngineLoop:
    def __init__(self, name: str = "vllm-engine-loop") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._gate = threading.Lock()
        self._closing = False

    def start(self) -> None:
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            loop.run_forever()

        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()
        started.wait()
        self._loop = loop

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the engine loop is not running")
        return self._loop

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` there and wait for it from a thread that is not an event loop's."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def submit(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Run `coro` there; the returned future belongs to the caller's loop, and cancelling it
        cancels the task on the engine loop. A stopped (or stopping) loop takes no more work."""
        with self._gate:
            loop = self._loop
            if loop is None or self._closing:
                coro.close()
                raise EngineNotLoaded("the engine is stopping or stopped")
            return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    def stop(self, timeout: float = 30.0) -> None:
        with self._gate:  # no submit lands after the pending tasks are ended below
            self._closing = True
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if thread.is_alive():
            # Tasks still pending there (vLLM's output handler) hold the AsyncLLM: end them here, or
            # its __del__ runs at interpreter exit against half-torn-down modules.
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(_cancel_pending(), loop).result(timeout)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()


async def _cancel_pending() -> None:
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
