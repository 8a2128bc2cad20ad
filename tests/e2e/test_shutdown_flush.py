"""SIGTERM with turns waiting for write-back: a real worker process (`python -m handler` on the
RunPod SDK's local API), the real upstash-redis SDK, the local bridge and a real Redis."""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import LocalApi, shutdown_env
from tests.e2e.redis_helpers import Bridge, RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.redis]
CONVERSATIONS = {"s": [f"s-{i}" for i in range(5)], "t": [f"t-{i}" for i in range(5)]}


def _worker_with_queued_turns(bridge: Bridge, server: RedisServer, tmp_path: Path, grace_s: int) -> LocalApi:
    """A worker holding 20 turns (10 exchanges, two conversations) queued behind a stopped Redis."""
    env = shutdown_env(bridge, PREFIX, grace_s)
    api = LocalApi(env, tmp_path / "worker.log")
    server.stop()
    for cid, messages in CONVERSATIONS.items():
        for message in messages:
            out = api.output({"action": "chat", "conversation_id": cid, "message": message, "max_tokens": 2})
            assert out["success"] and "shared state unavailable" in " ".join(out["warnings"])
    assert api.output({"action": "health"})["store"]["pending_turns"] == 20
    return api


def _stored_users(bridge: Bridge, cid: str) -> list[str]:
    raw = bridge.command("LRANGE", f"{PREFIX}:v2:conv:default:{cid}", 0, -1)
    turns = [json.loads(item) for item in raw or []]
    assert [t["role"] for t in turns] == ["user", "assistant"] * (len(turns) // 2)
    return [t["content"] for t in turns[::2]]


PREFIX = f"shutdown-{uuid.uuid4().hex[:8]}"


def test_sigterm_writes_every_queued_turn_when_redis_returns_in_the_grace_period(
    redis_and_bridge: tuple[RedisServer, Bridge], tmp_path: Path
) -> None:
    server, bridge = redis_and_bridge
    api = _worker_with_queued_turns(bridge, server, tmp_path, grace_s=120)
    try:
        api.proc.send_signal(signal.SIGTERM)
        server.restart()  # back during the grace period; no request reaches the worker any more
        api.proc.wait(timeout=180)
    finally:
        api.stop()
    assert {cid: _stored_users(bridge, cid) for cid in CONVERSATIONS} == CONVERSATIONS
    log = (tmp_path / "worker.log").read_text()
    assert "shutdown: wrote 20 queued turns of 2 conversations" in log


def test_sigterm_with_redis_still_away_logs_what_it_could_not_write(
    redis_and_bridge: tuple[RedisServer, Bridge], tmp_path: Path
) -> None:
    server, bridge = redis_and_bridge
    api = _worker_with_queued_turns(bridge, server, tmp_path, grace_s=2)
    try:
        api.proc.send_signal(signal.SIGTERM)
        api.proc.wait(timeout=180)  # the grace period ends it, Redis or not
    finally:
        api.stop()
    log = (tmp_path / "worker.log").read_text()
    assert "shutdown: 20 of 20 queued turns (2 conversations) could not be written to the shared store" in log
    assert "s-0" not in log  # counts, never text
