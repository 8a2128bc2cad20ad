"""The batch scheduler: batching, queue bound, failure isolation and OOM splitting.

Hand-offs to the model thread are events, never sleeps: the runner says when it holds a batch
(`entered`) and runs it when the test opens its gate, so batch shapes do not depend on timing.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from shared.engine.base import Generation, GenerationParams
from shared.engine.hf_engine.scheduler import BatchScheduler, Job, OutOfMemory
from shared.errors import EngineError, EngineOutOfMemory, Overloaded


class Runner:
    def __init__(self, fail_on: set[int] = frozenset(), oom_above: int = 0) -> None:  # type: ignore[assignment]
        self.batches: list[list[int]] = []
        self.fail_on = fail_on
        self.oom_above = oom_above
        self.entered = threading.Event()  # set once the model thread holds a batch
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, jobs: list[Job]) -> list[Generation]:
        self.entered.set()
        assert self.gate.wait(60), "the test never opened the gate"
        ids = [j.prompt_ids[0] for j in jobs]
        self.batches.append(ids)
        if self.oom_above and len(jobs) > self.oom_above:
            raise OutOfMemory
        if self.fail_on & set(ids):
            raise RuntimeError("bad row")
        return [Generation(f"out-{i}", 1, 1) for i in ids]


async def _submit_all(scheduler: BatchScheduler, n: int) -> list[Generation | BaseException]:
    loop = asyncio.get_running_loop()
    jobs = [Job([i], GenerationParams(), loop, loop.create_future()) for i in range(n)]
    for job in jobs:
        scheduler.submit(job)
    return list(await asyncio.gather(*(j.future for j in jobs), return_exceptions=True))


async def _held(runner: Runner) -> None:
    """Until the model thread holds a batch (the runner was entered), without blocking the loop."""
    assert await asyncio.to_thread(runner.entered.wait, 60), "the model thread never took a batch"


def _run_gated(runner: Runner, scheduler: BatchScheduler, n: int) -> list[Generation | BaseException]:
    """Job 0 runs alone and is held there; jobs 1..n-1 queue up behind it; then the model goes on."""
    runner.gate.clear()

    async def go() -> list[Generation | BaseException]:
        loop = asyncio.get_running_loop()
        jobs = [Job([i], GenerationParams(), loop, loop.create_future()) for i in range(n)]
        scheduler.submit(jobs[0])
        await _held(runner)
        for job in jobs[1:]:
            scheduler.submit(job)
        runner.gate.set()
        return list(await asyncio.gather(*(j.future for j in jobs), return_exceptions=True))

    return asyncio.run(go())


def test_concurrent_jobs_share_batches() -> None:
    runner = Runner()
    results = _run_gated(runner, BatchScheduler(runner, max_batch=4, max_queue=64), 10)
    assert [r.text for r in results if isinstance(r, Generation)] == [f"out-{i}" for i in range(10)]
    assert runner.batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]  # what waited ran together, in order


def test_one_failing_job_fails_alone() -> None:
    scheduler = BatchScheduler(Runner(fail_on={2}), max_batch=8, max_queue=64)
    results = asyncio.run(_submit_all(scheduler, 5))
    assert isinstance(results[2], EngineError)
    assert [r.text for i, r in enumerate(results) if i != 2 and isinstance(r, Generation)] == [
        f"out-{i}" for i in (0, 1, 3, 4)
    ]


def test_out_of_memory_shrinks_the_batch() -> None:
    runner = Runner(oom_above=2)
    results = _run_gated(runner, BatchScheduler(runner, max_batch=8, max_queue=64), 7)
    assert all(isinstance(r, Generation) for r in results)
    assert [len(b) for b in runner.batches] == [1, 6, 3, 1, 2, 3, 1, 2]  # the six that waited: halved until it fits


def test_out_of_memory_on_a_single_job_retries_once_then_fails_it() -> None:
    attempts: list[int] = []

    def always_oom(jobs: list[Job]) -> list[Generation]:
        attempts.append(len(jobs))
        raise OutOfMemory

    results = asyncio.run(_submit_all(BatchScheduler(always_oom, max_batch=1, max_queue=8), 1))
    assert isinstance(results[0], EngineOutOfMemory) and attempts == [1, 1]


def test_out_of_memory_once_then_success() -> None:
    attempts: list[int] = []

    def oom_first(jobs: list[Job]) -> list[Generation]:
        attempts.append(len(jobs))
        if len(attempts) == 1:
            raise OutOfMemory
        return [Generation("ok", 1, 1)]

    results = asyncio.run(_submit_all(BatchScheduler(oom_first, max_batch=1, max_queue=8), 1))
    assert isinstance(results[0], Generation) and results[0].text == "ok"


async def _fill_queue(runner: Runner, scheduler: BatchScheduler) -> list[Job]:
    """Four jobs: the first taken by the (gated) model thread, the next two waiting, one not submitted."""
    loop = asyncio.get_running_loop()
    jobs = [Job([i], GenerationParams(), loop, loop.create_future()) for i in range(4)]
    scheduler.submit(jobs[0])
    await _held(runner)  # the first is taken by the model thread
    scheduler.submit(jobs[1])
    scheduler.submit(jobs[2])
    return jobs


def test_queue_bound_refuses_with_overloaded() -> None:
    runner = Runner()
    runner.gate.clear()
    scheduler = BatchScheduler(runner, max_batch=1, max_queue=2)

    async def go() -> None:
        jobs = await _fill_queue(runner, scheduler)
        with pytest.raises(Overloaded):
            scheduler.submit(jobs[3])
        runner.gate.set()
        await asyncio.gather(*(j.future for j in jobs[:3]))

    asyncio.run(go())


def test_a_cancelled_waiting_job_never_runs_and_frees_its_queue_place() -> None:
    runner = Runner()
    runner.gate.clear()
    scheduler = BatchScheduler(runner, max_batch=1, max_queue=2)

    async def go() -> None:
        jobs = await _fill_queue(runner, scheduler)
        scheduler.cancel(jobs[1])  # its caller gave up
        scheduler.submit(jobs[3])  # the queue counts live jobs only: no Overloaded
        assert scheduler.waiting == 2
        runner.gate.set()
        await asyncio.gather(*(jobs[i].future for i in (0, 2, 3)))

    asyncio.run(go())
    assert [b[0] for b in runner.batches] == [0, 2, 3]


def test_a_result_for_a_closed_loop_leaves_the_thread_serving() -> None:
    runner = Runner()
    runner.gate.clear()
    scheduler = BatchScheduler(runner, max_batch=1, max_queue=8)
    gone = asyncio.new_event_loop()
    scheduler.submit(Job([7], GenerationParams(), gone, gone.create_future()))
    gone.close()  # the caller's loop ends before its result is delivered
    runner.gate.set()
    results = asyncio.run(_submit_all(scheduler, 2))
    assert [r.text for r in results if isinstance(r, Generation)] == ["out-0", "out-1"]
    assert runner.batches[0] == [7] and scheduler.alive and scheduler.fault is None


class Crash(BaseException):
    """Something no `except Exception` catches."""


def test_a_dead_model_thread_fails_its_jobs_at_once_and_restarts_with_the_next() -> None:
    calls: list[int] = []

    def crash_once(jobs: list[Job]) -> list[Generation]:
        calls.append(len(jobs))
        if len(calls) == 1:
            raise Crash
        return [Generation("ok", 1, 1) for _ in jobs]

    scheduler = BatchScheduler(crash_once, max_batch=4, max_queue=8)
    first = asyncio.run(asyncio.wait_for(_submit_all(scheduler, 1), 5))  # fails fast, no timeout
    assert isinstance(first[0], EngineError) and "model thread stopped" in str(first[0])
    assert scheduler.fault == "model thread stopped: Crash"  # what health reports until the next job
    second = asyncio.run(_submit_all(scheduler, 1))
    assert isinstance(second[0], Generation) and scheduler.fault is None and scheduler.alive


def test_shutdown_fails_waiting_and_running_jobs_and_ends_the_thread() -> None:
    runner = Runner()
    runner.gate.clear()
    scheduler = BatchScheduler(runner, max_batch=1, max_queue=8)

    async def go() -> list[Generation | BaseException]:
        loop = asyncio.get_running_loop()
        jobs = [Job([i], GenerationParams(), loop, loop.create_future()) for i in range(3)]
        for job in jobs:
            scheduler.submit(job)
        await _held(runner)  # job 0 is running, held by the gate
        stopping = loop.run_in_executor(None, scheduler.shutdown, EngineError("unloaded"))
        await asyncio.wait([jobs[1].future])  # shutdown has failed the waiting jobs: it is stopping
        runner.gate.set()
        await stopping
        return list(await asyncio.gather(*(j.future for j in jobs), return_exceptions=True))

    results = asyncio.run(go())
    assert all(isinstance(r, EngineError) for r in results)
    assert not scheduler.alive and runner.batches == [[0]]  # the waiting two never ran
