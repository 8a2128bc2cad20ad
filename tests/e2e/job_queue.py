"""A local stand-in for RunPod's job queue API: what the RunPod SDK (runpod==1.10.0) calls in queue mode.

`python -m handler` without --rp_serve_api runs the SDK's JobScaler when RUNPOD_WEBHOOK_GET_JOB is
set. It long-polls the job-take URL (`$ID` is the worker id; `/job-take-batch/` with `&batch_size=N`
when it has room for more than one job; 204 = no job), long-polls the stop channel derived from it
(`/job-stop/`, `{"jobsToStop": [...]}` or 204), posts each streamed item to
RUNPOD_WEBHOOK_POST_STREAM and the result to RUNPOD_WEBHOOK_POST_OUTPUT (`$RUNPOD_POD_ID` and `$ID`
substituted, `&isStream=` appended, a JSON body sent as form data), and pings RUNPOD_WEBHOOK_PING
from a child process. Every call carries RUNPOD_AI_API_KEY as its Authorization header.

This stand-in is a real HTTP server (aiohttp, on its own thread and loop): the test queues jobs,
waits on what the worker posted (condition variables, no polling of the worker) and can hold a
job's stream posts open, so that a job is certainly still running when the test acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.e2e.conftest import ROOT, free_port

ENDPOINT = "stand-in-endpoint"
WORKER_ID = "stand-in-worker"
API_KEY = "stand-in-api-key"
HOLD_POLL_S = 2.0  # an empty job-take or job-stop poll is held this long, then answered 204 (RunPod holds too)


@dataclass
class Posted:
    """What the worker posted for one job."""

    result: dict[str, Any] | None = None
    result_is_stream: bool | None = None
    stream: list[dict[str, Any]] = field(default_factory=list)


class JobQueueStandIn:
    """RunPod's job-take / job-stop / job-stream / job-done / ping endpoints for one worker."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._state = threading.Condition()
        self._queue: deque[dict[str, Any]] = deque()
        self.posted: dict[str, Posted] = {}
        self.takes = 0  # job-take polls received (the first one: the worker's job loop is running)
        self.handed_out: list[str] = []
        self.pings = 0
        self.unauthorized = 0
        self._held: set[str] = set()  # job ids whose stream posts wait for `release`
        self._loop = asyncio.new_event_loop()
        self._job_ready: asyncio.Event | None = None
        self._released: dict[str, asyncio.Event] = {}
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="job-queue-stand-in", daemon=True)
        self._thread.start()
        if not self._started.wait(20):
            raise RuntimeError("the job queue stand-in did not start")

    # ---- what the worker is told -----------------------------------------------------
    def env(self) -> dict[str, str]:
        """The environment RunPod gives a queue worker, pointing at this stand-in."""
        v2 = f"{self.base}/v2/{ENDPOINT}"
        return {
            "RUNPOD_WEBHOOK_GET_JOB": f"{v2}/job-take/$ID?gpu=stand-in",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{v2}/job-done/$RUNPOD_POD_ID/$ID?gpu=stand-in",
            "RUNPOD_WEBHOOK_POST_STREAM": f"{v2}/job-stream/$RUNPOD_POD_ID/$ID?gpu=stand-in",
            "RUNPOD_WEBHOOK_PING": f"{v2}/ping/$RUNPOD_POD_ID?gpu=stand-in",
            "RUNPOD_POD_ID": WORKER_ID,
            "RUNPOD_AI_API_KEY": API_KEY,
            # The SDK's start-up fitness checks (GPU, memory, disk, network) are RunPod's, not ours:
            # off here, so the test does not depend on the machine it runs on.
            "RUNPOD_SKIP_GPU_CHECK": "true",
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
        }

    # ---- what the test does ------------------------------------------------------------
    def add_job(self, job_id: str, job_input: Any, hold_stream: bool = False) -> None:
        """Queue a job; with `hold_stream`, its stream posts are not answered until `release(job_id)`."""
        with self._state:
            self._queue.append({"id": job_id, "input": job_input})
            self.posted[job_id] = Posted()
            if hold_stream:
                self._held.add(job_id)
        self._loop.call_soon_threadsafe(self._wake_takers)

    def release(self, job_id: str) -> None:
        """Answer the job's held stream posts (and those to come)."""
        with self._state:
            self._held.discard(job_id)
        self._loop.call_soon_threadsafe(lambda: self._released.setdefault(job_id, asyncio.Event()).set())

    def wait_for(
        self, condition: Callable[[JobQueueStandIn], bool], what: str, worker: QueueWorker, timeout: float = 180
    ) -> None:
        """Block until `condition(self)` holds, checked whenever the worker calls; fail at once when the
        worker has exited or a call was refused, and at a generous deadline."""
        deadline = time.monotonic() + timeout
        with self._state:
            while not condition(self):
                if self.unauthorized:
                    raise AssertionError(f"{self.unauthorized} call(s) refused (a ~/.runpod/config.toml key?)")
                if worker.proc.poll() is not None:
                    raise AssertionError(f"the worker exited before {what}: {worker.log_text()[-3000:]}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{what} did not happen within {timeout} s")
                self._state.wait(min(left, 1.0))  # woken by each call; the tick only notices an exit

    def result(self, job_id: str) -> dict[str, Any]:
        with self._state:
            posted = self.posted[job_id]
            assert posted.result is not None, f"no result posted for {job_id}"
            return posted.result

    def has_result(self, job_id: str) -> bool:
        return self.posted[job_id].result is not None

    def has_stream(self, job_id: str) -> bool:
        return bool(self.posted[job_id].stream)

    def stop(self) -> None:
        def shutdown() -> None:
            for event in self._released.values():
                event.set()  # held posts answer, so the server's shutdown does not wait on them
            self._loop.stop()

        self._loop.call_soon_threadsafe(shutdown)
        self._thread.join(timeout=20)

    # ---- the server ----------------------------------------------------------------------
    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._job_ready = asyncio.Event()
        app = web.Application(middlewares=[self._auth])
        v2 = f"/v2/{ENDPOINT}"
        app.router.add_get(f"{v2}/job-take/{{worker}}", self._take)
        app.router.add_get(f"{v2}/job-take-batch/{{worker}}", self._take)
        app.router.add_get(f"{v2}/job-stop/{{worker}}", self._stop_poll)
        app.router.add_post(f"{v2}/job-stream/{{worker}}/{{job}}", self._stream)
        app.router.add_post(f"{v2}/job-done/{{worker}}/{{job}}", self._done)
        app.router.add_get(f"{v2}/ping/{{worker}}", self._ping)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(runner.cleanup())
            self._loop.close()

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization") != API_KEY or request.match_info.get("worker") != WORKER_ID:
            with self._state:
                self.unauthorized += 1
                self._state.notify_all()
            return web.Response(status=401)
        response: web.StreamResponse = await handler(request)
        return response

    def _wake_takers(self) -> None:
        assert self._job_ready is not None
        self._job_ready.set()

    def _pop(self, n: int) -> list[dict[str, Any]]:
        with self._state:
            jobs = [self._queue.popleft() for _ in range(min(n, len(self._queue)))]
            self.handed_out += [job["id"] for job in jobs]
            self._state.notify_all()
            return jobs

    async def _take(self, request: web.Request) -> web.Response:
        batch = "batch_size" in request.query
        n = int(request.query.get("batch_size", "1"))
        with self._state:
            self.takes += 1
            self._state.notify_all()
        assert self._job_ready is not None
        jobs = self._pop(n)
        if not jobs:  # hold the poll until a job is queued, as RunPod does
            self._job_ready.clear()
            try:
                await asyncio.wait_for(self._job_ready.wait(), HOLD_POLL_S)
            except TimeoutError:
                return web.Response(status=204)
            jobs = self._pop(n)
            if not jobs:
                return web.Response(status=204)
        return web.json_response(jobs if batch else jobs[0])

    async def _stop_poll(self, request: web.Request) -> web.Response:
        await asyncio.sleep(HOLD_POLL_S)  # nothing is ever stopped through this channel here
        return web.Response(status=204)

    async def _stream(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job"]
        item = json.loads(await request.text())
        with self._state:
            self.posted[job_id].stream.append(item)
            held = job_id in self._held
            self._state.notify_all()
        if held:
            await self._released.setdefault(job_id, asyncio.Event()).wait()
        return web.Response(text="ok")

    async def _done(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job"]
        body = json.loads(await request.text())
        with self._state:
            self.posted[job_id].result = body
            self.posted[job_id].result_is_stream = request.query.get("isStream") == "true"
            self._state.notify_all()
        return web.Response(text="ok")

    async def _ping(self, request: web.Request) -> web.Response:
        with self._state:
            self.pings += 1
            self._state.notify_all()
        return web.Response(text="ok")


class QueueWorker:
    """`python -m handler` in queue mode: the RunPod SDK's JobScaler, pointed at a stand-in by `env`.

    It runs in its own folder: the SDK keeps its jobs in progress in ./.runpod_jobs.pkl and reads
    them back at start, so a worker killed mid-job must not leave them to the next one.
    """

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.log_path = folder / "worker.log"
        self.log = self.log_path.open("w")
        env = {**env, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "handler"], cwd=folder, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def log_text(self) -> str:
        return self.log_path.read_text()

    def wait_log(self, text: str, timeout: float = 60) -> None:
        """Until the worker's log holds `text` (read every 0.1 s), while it runs."""
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            if self.proc.poll() is not None:
                raise AssertionError(f"the worker exited before logging {text!r}: {self.log_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker did not log {text!r} within {timeout} s")
            time.sleep(0.1)

    def stop(self) -> None:
        """End the worker and its children (the SDK's heartbeat process) if a test left them running."""
        import psutil

        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            children = []
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=15)
        self.log.close()
