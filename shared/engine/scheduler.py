"""A bounded queue and one model thread that batches concurrent generations.

Jobs wait while the model is busy; when it frees up, everything queued (up to
`max_batch`) runs as one batched `generate`. Beyond `max_queue` waiting jobs, new work
is refused at once with `overloaded`, never piled up. A failing batch is split so that
one job's failure (or an out-of-memory error) fails only that job.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.engine.base import Generation, GenerationParams
from shared.errors import EngineError, EngineOutOfMemory, Overloaded

log = logging.getLogger(__name__)


@dataclass
class Job:
    prompt_ids: list[int]
    params: GenerationParams
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Generation]
    on_token: Callable[[int], None] | None = None
    prefix_ids: list[int] = field(default_factory=list)  # a cached-KV prefix of prompt_ids, if reusable
    oom_retried: bool = False

    def resolve(self, result: Generation | BaseException) -> None:
        def apply() -> None:
            if self.future.done():
                return
            if isinstance(result, BaseException):
                self.future.set_exception(result)
            else:
                self.future.set_result(result)

        self.loop.call_soon_threadsafe(apply)


class OutOfMemory(Exception):
    """Raised by the batch runner when the device ran out of memory for this batch."""


class BatchScheduler:
    def __init__(
        self,
        run_batch: Callable[[list[Job]], list[Generation]],
        max_batch: int,
        max_queue: int,
        window_s: float = 0.0,
    ) -> None:
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.window_s = window_s  # how long a lone job waits for company before running alone
        self._queue: deque[Job] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self.batches_run = 0
        self.largest_batch = 0

    def submit(self, job: Job) -> None:
        with self._cond:
            if len(self._queue) >= self.max_queue:
                raise Overloaded(f"{len(self._queue)} generations are already waiting; try again shortly")
            self._queue.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="engine-batcher", daemon=True)
                self._thread.start()
            self._cond.notify()

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                # Jobs that arrive together (a burst, parallel calls) share one batch: wait while
                # they keep coming, until a quiet window passes or the batch is full.
                while self.window_s > 0 and len(self._queue) < self.max_batch:
                    before = len(self._queue)
                    self._cond.wait(self.window_s)
                    if len(self._queue) == before:
                        break
                batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            self.batches_run += 1
            self.largest_batch = max(self.largest_batch, len(batch))
            self._run(batch)

    def _run(self, batch: list[Job]) -> None:
        try:
            results = self._run_batch(batch)
        except OutOfMemory:
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
            return
        except Exception as exc:
            if len(batch) > 1:
                for job in batch:
                    self._run([job])
                return
            log.exception("generation failed")
            error = exc if isinstance(exc, EngineError) else EngineError(f"generation failed: {type(exc).__name__}")
            batch[0].resolve(error)
            return
        for job, result in zip(batch, results, strict=True):
            job.resolve(result)
