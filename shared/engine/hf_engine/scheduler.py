"""A bounded queue and one model thread that batches concurrent generations.

Jobs wait while the model is busy; when it frees up, everything queued (up to
`max_batch`) runs as one batch. Beyond `max_queue` waiting jobs, new work is refused at
once with `overloaded`, never piled up. A failing batch is split so that one job's
failure (or an out-of-memory error) fails only that job; a job keeps its progress
(tokens already picked and streamed) across such retries.

A caller that gives up cancels its job: a waiting job leaves the queue, a running one
stops at the next decode step. The thread survives callers whose event loop has closed;
if it dies anyway, its jobs fail at once, `fault` says why, and the next job restarts it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.engine.base import GenerationParams
from shared.errors import EngineError, EngineOutOfMemory, Overloaded

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Job:
    prompt_ids: list[int]
    params: GenerationParams
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    on_text: Callable[[str], None] | None = None  # streamed text, called on the model thread
    prefix_ids: list[int] = field(default_factory=list)  # a cached-KV prefix of prompt_ids, if reusable
    judge_ids: tuple[int, int] | None = None  # a judge job: P(first id) against the second, one forward pass
    oom_retried: bool = False
    cancelled: bool = False
    progress: Any = None  # the runner's per-job decoding state, kept across retries

    def cancel(self) -> None:
        self.cancelled = True  # read by the model thread at each decode step

    def resolve(self, result: Any) -> None:
        def apply() -> None:
            if self.future.done():
                return
            if isinstance(result, BaseException):
                self.future.set_exception(result)
            else:
                self.future.set_result(result)

        try:
            self.loop.call_soon_threadsafe(apply)
        except RuntimeError:  # the caller's loop is closed: nobody is waiting, nothing to deliver
            self.cancelled = True


class OutOfMemory(Exception):
    """Raised by the batch runner when the device ran out of memory for this batch."""


class BatchScheduler:
    def __init__(
        self,
        run_batch: Callable[[list[Job]], list[Any]],
        max_batch: int,
        max_queue: int,
        window_s: float = 0.0,
    ) -> None:
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.window_s = window_s  # how long a lone job waits for company before running alone
        self._queue: deque[Job] = deque()
        self._running: list[Job] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.fault: str | None = None  # why the model thread stopped, until the next job restarts it
        self.batches_run = 0
        self.largest_batch = 0

    def submit(self, job: Job) -> None:
        with self._cond:
            if len(self._queue) >= self.max_queue:
                self._queue = deque(j for j in self._queue if not j.cancelled)
            if len(self._queue) >= self.max_queue:
                raise Overloaded(f"{len(self._queue)} generations are already waiting; try again shortly")
            self._queue.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._stopping, self.fault = False, None
                self._thread = threading.Thread(target=self._loop, name="engine-batcher", daemon=True)
                self._thread.start()
            self._cond.notify()

    def cancel(self, job: Job) -> None:
        """The caller gave up: drop the job if it waits, stop it at the next step if it runs."""
        job.cancel()
        with self._cond:
            if job in self._queue:
                self._queue.remove(job)

    def shutdown(self, error: BaseException, wait_s: float = 60.0) -> None:
        """Fail waiting jobs, stop running ones at their next step, and wait for the thread to end."""
        with self._cond:
            self._stopping = True
            pending = [*self._queue, *self._running]
            self._queue.clear()
            thread = self._thread
            self._cond.notify_all()
        for job in pending:
            job.resolve(error)
            job.cancel()
        if thread is not None and thread is not threading.current_thread():
            thread.join(wait_s)
        with self._cond:
            self._thread = None if thread is None or not thread.is_alive() else thread

    @property
    def waiting(self) -> int:
        return len(self._queue)

    @property
    def running(self) -> int:
        """Jobs in the batch on the model thread now."""
        return len(self._running)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _next_batch(self) -> list[Job] | None:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            # Jobs that arrive together (a burst, parallel calls) share one batch: wait while
            # they keep coming, until a quiet window passes or the batch is full.
            while self.window_s > 0 and 0 < len(self._queue) < self.max_batch and not self._stopping:
                before = len(self._queue)
                self._cond.wait(self.window_s)
                if len(self._queue) == before:
                    break
            if self._stopping:
                return None
            batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            self._running = batch
            return batch

    def _loop(self) -> None:
        batch: list[Job] = []
        try:
            while (next_batch := self._next_batch()) is not None:
                batch = next_batch
                self.batches_run += 1
                self.largest_batch = max(self.largest_batch, len(batch))
                self._run(batch)
                with self._cond:
                    self._running = []
        except BaseException as exc:  # noqa: BLE001 - never die silently: fail the jobs and say why
            self._died(exc, batch)

    def _died(self, exc: BaseException, batch: list[Job]) -> None:
        log.exception("the model thread stopped")
        with self._cond:
            self.fault = f"model thread stopped: {type(exc).__name__}"
            pending = [*batch, *self._queue]
            self._queue.clear()
            self._running = []
            self._thread = None  # the next submit starts a new one
        for job in pending:
            job.resolve(EngineError(f"{self.fault}; it restarts with the next job"))

    def _run(self, batch: list[Job]) -> None:
        live = [job for job in batch if not job.cancelled]
        if not live:
            return
        try:
            results = self._run_batch(live)
        except OutOfMemory:
            self._after_oom(live)
            return
        except Exception as exc:
            if len(live) > 1:
                for job in live:
                    self._run([job])
                return
            log.exception("generation failed")
            error = exc if isinstance(exc, EngineError) else EngineError(f"generation failed: {type(exc).__name__}")
            live[0].resolve(error)
            return
        for job, result in zip(live, results, strict=True):
            job.resolve(result)

    def _after_oom(self, batch: list[Job]) -> None:
        if len(batch) == 1:
            job = batch[0]
            if not job.oom_retried:  # the cache was freed: one more try
                job.oom_retried = True
                self._run(batch)
                return
            job.resolve(EngineOutOfMemory("the GPU ran out of memory for this job"))
            return
        half = len(batch) // 2  # shrink the batch instead of failing every job in it
        log.warning("out of memory with a batch of %d; retrying as %d + %d", len(batch), half, len(batch) - half)
        self._run(batch[:half])
        self._run(batch[half:])
