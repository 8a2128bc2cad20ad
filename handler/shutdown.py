"""SIGTERM: stop taking jobs, let running ones finish (or cancel them), write queued turns back.

RunPod scales a worker down with SIGTERM, then SIGKILL after its grace period. Turns that wait
for the shared store live only in this process, so the shutdown path gives them the rest of
SHUTDOWN_GRACE_S (counted from the signal; default 20 s, below RunPod's grace) and logs what it
could not write (counts, never text). Three ways the worker runs, one hook each:

- queue mode (the RunPod SDK's JobScaler, runpod==1.10.0): its SIGTERM handler stops the job
  loop; `hook_job_scaler` also ends its long-polls at once (they would hold the exit up to 90 s),
  gives running jobs up to half the time left, cancels the rest, then flushes the store;
- the SDK's local API (`--rp_serve_api`, uvicorn) and HTTP mode (handler/http/server.py): uvicorn
  stops accepting and waits for requests in flight; the app's lifespan shutdown then flushes
  (`flush_on_lifespan_shutdown`).

The SDK exposes no shutdown hook, so its two classes get one method each, wrapped in place
(the local-API path is exercised by tests/e2e/test_shutdown_flush.py, the queue-mode hooks by
tests/e2e/test_shutdown_queue_mode.py against a stand-in for RunPod's job queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from handler.app import Worker

log = logging.getLogger("handler")


class Grace:
    """The shutdown's time budget, counted from the first signal (or from the first use, without one)."""

    def __init__(self, grace_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace_s = grace_s
        self.clock = clock
        self.since: float | None = None

    def start(self) -> None:
        if self.since is None:
            self.since = self.clock()

    def left(self) -> float:
        self.start()
        assert self.since is not None
        return max(0.0, self.grace_s - (self.clock() - self.since))


def flush_on_lifespan_shutdown(app: Any, worker: Worker, grace: Grace) -> None:
    """After the app's own lifespan ends (uvicorn has stopped taking requests), write queued turns back."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as state:
            yield state
        await worker.shutdown(grace.left())

    app.router.lifespan_context = lifespan


def _sdk_class(cls: type, module: str) -> Any:
    """The SDK's own class, even where a subclass of ours has already taken its name."""
    return next(c for c in cls.__mro__ if c.__module__ == module)


def hook_local_api(worker: Worker, grace: Grace) -> None:
    """The SDK's local API (`--rp_serve_api`): its FastAPI app flushes on uvicorn's shutdown."""
    from runpod.serverless.modules import rp_fastapi

    sdk = _sdk_class(rp_fastapi.WorkerAPI, "runpod.serverless.modules.rp_fastapi")
    start_uvicorn = sdk.start_uvicorn
    if getattr(start_uvicorn, "_flushes", False):
        return

    def start(self: Any, *args: Any, **kwargs: Any) -> None:
        flush_on_lifespan_shutdown(self.rp_app, worker, grace)
        start_uvicorn(self, *args, **kwargs)

    start._flushes = True  # type: ignore[attr-defined]
    sdk.start_uvicorn = start


def hook_job_scaler(worker: Worker, grace: Grace) -> None:
    """Queue mode: after the SDK's SIGTERM handler, end the job loop at once, drain jobs, flush the store."""
    from runpod.serverless.modules import rp_scale

    sdk = _sdk_class(rp_scale.JobScaler, "runpod.serverless.modules.rp_scale")
    sdk_run, sdk_handle_shutdown = sdk.run, sdk.handle_shutdown
    if getattr(sdk_run, "_flushes", False):
        return

    def handle_shutdown(self: Any, signum: int, frame: Any) -> None:
        grace.start()
        sdk_handle_shutdown(self, signum, frame)  # the SDK's loops stop taking jobs
        stopping = getattr(self, "_stopping", None)
        if stopping is not None:
            stopping[0].call_soon_threadsafe(stopping[1].set)

    async def run(self: Any) -> None:
        stop = asyncio.Event()
        self._stopping = (asyncio.get_running_loop(), stop)
        # The long-polls end at the signal. The SDK's job runner and its HTTP session stay: the runner
        # starts the jobs already taken and waits for those running, whose results go out through
        # that session (cancelling the SDK's whole run closed it under them: results were lost).
        self.get_jobs = _until(stop, self.get_jobs)
        self.monitor_stop_signals = _until(stop, self.monitor_stop_signals)
        loops = asyncio.create_task(sdk_run(self))
        signalled = asyncio.create_task(stop.wait())
        await asyncio.wait({loops, signalled}, return_when=asyncio.FIRST_COMPLETED)
        signalled.cancel()
        try:
            if not loops.done():
                log.info(
                    "shutdown: stopped taking jobs; %d running, %.1fs of the grace period left",
                    len(self.jobs_tasks),
                    grace.left(),
                )
                await finish_jobs(loops, self.jobs_tasks, grace.left() / 2)
        finally:
            await worker.shutdown(grace.left())
        loops.result()  # the SDK's own failure, if any, after the flush

    run._flushes = True  # type: ignore[attr-defined]
    sdk.run = run
    sdk.handle_shutdown = handle_shutdown


def hook_sdk(worker: Worker, grace: Grace) -> None:
    """Queue mode and the local API: both flush on SIGTERM."""
    hook_job_scaler(worker, grace)
    hook_local_api(worker, grace)


def _until(stop: asyncio.Event, poll: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    """One of the SDK's long-poll loops, ended (cancelled) as soon as `stop` is set."""

    async def run(session: Any) -> None:
        polling = asyncio.ensure_future(poll(session))
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({polling, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling

    return run


async def finish_jobs(runner: asyncio.Task[Any], jobs: dict[str, asyncio.Task[Any]], within_s: float) -> None:
    """Let the SDK's job runner finish its jobs within `within_s`; cancel (and log) those still running then."""
    if within_s > 0:
        await asyncio.wait({runner}, timeout=within_s)
    if runner.done():
        return
    late = [t for t in jobs.values() if not t.done()]
    log.warning("shutdown: cancelling %d job(s) still running after %.1fs", len(late), within_s)
    while not runner.done():  # the runner gathers its cancelled jobs (one it started meanwhile too), then ends
        for task in list(jobs.values()):
            task.cancel()
        await asyncio.wait({runner}, timeout=0.5)
