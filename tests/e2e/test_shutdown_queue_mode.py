"""SIGTERM in queue mode: a real worker process (`python -m handler`, the RunPod SDK's JobScaler)
taking jobs from a local stand-in for RunPod's job queue (tests/e2e/job_queue.py), the real
upstash-redis SDK, the local bridge and a real Redis (handler/shutdown.py's `hook_job_scaler`)."""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import shutdown_env
from tests.e2e.job_queue import JobQueueStandIn, QueueWorker
from tests.e2e.redis_helpers import Bridge, RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.redis]
PREFIX = f"shutdown-queue-{uuid.uuid4().hex[:8]}"
CONVERSATIONS = {"s": [f"s-{i}" for i in range(5)], "t": [f"t-{i}" for i in range(5)]}
STOPPED_TAKING = "shutdown: stopped taking jobs"  # handler/shutdown.py, once the signal has ended the job loop


@pytest.fixture
def queue() -> Iterator[JobQueueStandIn]:
    stand_in = JobQueueStandIn()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def start_worker(
    redis_and_bridge: tuple[RedisServer, Bridge], queue: JobQueueStandIn, tmp_path: Path
) -> Iterator[Callable[[int], QueueWorker]]:
    """Started by `start(grace_s)`; whatever a test leaves running ends with it."""
    started: list[QueueWorker] = []

    def start(grace_s: int) -> QueueWorker:
        _, bridge = redis_and_bridge
        env = shutdown_env(bridge, PREFIX, grace_s, **queue.env())
        worker = QueueWorker(env, tmp_path)
        started.append(worker)
        queue.wait_for(lambda q: q.takes > 0, "the worker's first job-take poll", worker, timeout=300)
        return worker

    yield start
    for worker in started:
        worker.stop()


def _stored_users(bridge: Bridge, cid: str) -> list[str]:
    raw = bridge.command("LRANGE", f"{PREFIX}:v2:conv:default:{cid}", 0, -1)
    turns = [json.loads(item) for item in raw or []]
    assert [t["role"] for t in turns] == ["user", "assistant"] * (len(turns) // 2)
    return [t["content"] for t in turns[::2]]


def _results_of(ids: list[str]) -> Callable[[JobQueueStandIn], bool]:
    return lambda q: all(q.has_result(job_id) for job_id in ids)


def _exits(worker: QueueWorker, timeout: float = 180) -> int:
    """The worker's exit status, once it has exited (a generous bound, far above its grace period)."""
    return worker.proc.wait(timeout=timeout)


def test_sigterm_in_queue_mode_writes_every_queued_turn_when_redis_returns(
    redis_and_bridge: tuple[RedisServer, Bridge], queue: JobQueueStandIn, start_worker: Callable[[int], QueueWorker]
) -> None:
    server, bridge = redis_and_bridge
    worker = start_worker(120)
    server.stop()
    # Both conversations at once, each one message at a time (its turns stay in order).
    for i in range(5):
        ids = [f"{cid}-{i}" for cid in CONVERSATIONS]
        for job_id, cid in zip(ids, CONVERSATIONS, strict=True):
            queue.add_job(job_id, {"action": "chat", "conversation_id": cid, "message": job_id, "max_tokens": 2})
        queue.wait_for(_results_of(ids), f"results of {ids}", worker)
        for job_id in ids:
            out = queue.result(job_id)["output"]
            assert out["success"] and "shared state unavailable" in " ".join(out["warnings"]), out
    queue.add_job("health", {"action": "health"})
    queue.wait_for(lambda q: q.has_result("health"), "the health job's result", worker)
    assert queue.result("health")["output"]["store"]["pending_turns"] == 20

    worker.proc.send_signal(signal.SIGTERM)
    server.restart()  # back during the grace period; no job reaches the worker any more
    assert _exits(worker) == 0

    assert {cid: _stored_users(bridge, cid) for cid in CONVERSATIONS} == CONVERSATIONS
    log = worker.log_text()
    assert STOPPED_TAKING in log
    assert "shutdown: wrote 20 queued turns of 2 conversations" in log
    assert queue.handed_out == [f"{cid}-{i}" for i in range(5) for cid in CONVERSATIONS] + ["health"]
    assert queue.unauthorized == 0


def test_a_job_running_at_sigterm_finishes_and_its_result_is_posted(
    redis_and_bridge: tuple[RedisServer, Bridge], queue: JobQueueStandIn, start_worker: Callable[[int], QueueWorker]
) -> None:
    _, bridge = redis_and_bridge
    worker = start_worker(120)
    job = {"action": "chat", "conversation_id": "r", "message": "r-0", "max_tokens": 4, "stream": True}
    queue.add_job("running", job, hold_stream=True)
    queue.wait_for(lambda q: q.has_stream("running"), "the job's first stream post", worker)
    assert not queue.has_result("running")  # its stream post is held: the job is running

    worker.proc.send_signal(signal.SIGTERM)
    worker.wait_log(STOPPED_TAKING)  # the signal has ended the job loop; the job still runs
    queue.release("running")
    assert _exits(worker) == 0

    posted = queue.posted["running"]
    assert posted.result is not None and posted.result_is_stream, posted
    assert posted.result["output"][-1]["success"] is True, posted.result
    assert _stored_users(bridge, "r") == ["r-0"]
    assert "cancelling" not in worker.log_text()


def test_a_job_still_running_when_its_share_of_the_grace_ends_is_cancelled_and_logged(
    queue: JobQueueStandIn, start_worker: Callable[[int], QueueWorker]
) -> None:
    worker = start_worker(4)
    job = {"action": "chat", "conversation_id": "c", "message": "c-0", "max_tokens": 4, "stream": True}
    queue.add_job("stuck", job, hold_stream=True)  # never released: the job cannot finish
    queue.wait_for(lambda q: q.has_stream("stuck"), "the job's first stream post", worker)

    worker.proc.send_signal(signal.SIGTERM)
    assert _exits(worker) == 0

    log = worker.log_text()
    assert STOPPED_TAKING in log
    assert "shutdown: cancelling 1 job(s) still running after" in log
    assert not queue.has_result("stuck")
