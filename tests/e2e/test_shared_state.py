"""Shared state through the real upstash-redis SDK, the local bridge and a real Redis."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from handler.app import Worker
from shared.settings import load_settings
from shared.store.upstash import UpstashStore
from tests.e2e.conftest import ADMIN, LocalApi
from tests.e2e.redis_helpers import Bridge, RedisServer
from tests.fakes.engine import FakeEngine

pytestmark = [pytest.mark.e2e, pytest.mark.redis]
TOKEN = "bridge-test-token"
GOOD_TAGS = "red dress, golden hour lighting, city street, bokeh, 85mm, photorealistic"


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    b = Bridge("redis://127.0.0.1:6379/0", TOKEN, tmp_path_factory.mktemp("bridge") / "bridge.log")
    yield b
    b.stop()


@pytest.fixture(scope="module")
def two_workers(bridge: Bridge, start_api: Callable[..., LocalApi]) -> tuple[LocalApi, LocalApi]:
    env = {
        "UPSTASH_REDIS_REST_URL": bridge.url,
        "UPSTASH_REDIS_REST_TOKEN": TOKEN,
        "REDIS_KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}",
        "MAX_HISTORY_TURNS": "200",
    }
    return start_api(**env), start_api(**env)


def test_health_says_state_is_shared(two_workers: tuple[LocalApi, LocalApi]) -> None:
    health = two_workers[0].output({"action": "health"})
    assert health["state_shared"] is True and health["store"]["backend"] == "upstash" and health["warnings"] == []


def test_enhancement_on_one_worker_is_a_cache_hit_on_the_other(two_workers: tuple[LocalApi, LocalApi]) -> None:
    a, b = two_workers
    for seed in range(5):  # a rule-based fallback is not cached; find a seed the model answers usably
        first = a.output({"action": "enhance", "prompt": "a red fox in the snow", "seed": seed})
        if first["enhancement_source"] != "rule_based":
            break
    second = b.output({"action": "enhance", "prompt": "a red fox in the snow", "seed": seed})
    assert first["cache_hit"] is False and second["cache_hit"] is True
    assert {**first, "cache_hit": True} == second
    info = b.output({"action": "enhancement_info"})
    assert info["cache_hits"] >= 1 and info["cache_shared"] is True


def test_conversation_continues_on_the_other_worker(two_workers: tuple[LocalApi, LocalApi]) -> None:
    a, b = two_workers
    cid = f"cross-{uuid.uuid4().hex[:6]}"
    a.output({"action": "chat", "message": "My name is Ada.", "conversation_id": cid, "max_tokens": 8})
    second = b.output({"action": "chat", "message": "What is my name?", "conversation_id": cid, "max_tokens": 8})
    assert second["history_turns_used"] == 2


def test_fifty_turns_from_two_workers_at_once(two_workers: tuple[LocalApi, LocalApi]) -> None:
    a, b = two_workers
    cid = f"race-{uuid.uuid4().hex[:6]}"

    def send(i: int) -> dict[str, Any]:
        api = a if i % 2 else b
        return api.output(
            {"action": "chat", "message": f"turn-{i}", "conversation_id": cid, "max_tokens": 1, "temperature": 0.0}
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(r["success"] for r in pool.map(send, range(50)))
    turns = a.output({"action": "admin", "command": "conversation_get", "conversation_id": cid, "admin_token": ADMIN})[
        "turns"
    ]
    users = [t["content"] for t in turns if t["role"] == "user"]
    assert sorted(users) == sorted(f"turn-{i}" for i in range(50))
    assert len(turns) == 100
    # consistent order: every user turn is immediately followed by its reply (one atomic append each)
    assert all(turns[i]["role"] == "user" and turns[i + 1]["role"] == "assistant" for i in range(0, 100, 2))


# ---- faults, in-process workers on the real SDK and bridge ------------------------------
def _worker(bridge_url: str, token: str, prefix: str | None = None, **extra: Any) -> tuple[Worker, FakeEngine]:
    settings = load_settings(
        upstash_redis_rest_url=bridge_url,
        upstash_redis_rest_token=token,
        redis_key_prefix=prefix or f"fault-{uuid.uuid4().hex[:8]}",
        admin_token=ADMIN,
        **extra,
    )
    engine = FakeEngine(default=GOOD_TAGS)
    return Worker(settings, engine), engine


def _run(worker: Worker, payload: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(worker.handle({"input": payload}))


def test_redis_stopped_mid_run_then_written_back(tmp_path: Path) -> None:
    server = RedisServer()
    bridge = Bridge(server.url, TOKEN, tmp_path / "b.log")
    try:
        worker, _ = _worker(bridge.url, TOKEN, redis_timeout_s=1.0, redis_retry_after_s=0.5)
        chat = {"action": "chat", "conversation_id": "outage"}
        assert "warnings" not in _run(worker, {**chat, "message": "before"})
        server.stop()
        during = _run(worker, {**chat, "message": "during"})
        assert during["success"] and "shared state unavailable" in " ".join(during["warnings"])
        assert during["history_turns_used"] == 2  # served from worker memory
        enhanced = _run(worker, {"action": "enhance", "prompt": "castle"})
        assert enhanced["success"] and "shared state unavailable" in enhanced["warning"]
        health = _run(worker, {"action": "health"})
        assert health["status"] == "degraded" and health["store"]["pending_turns"] == 2
        assert _run(worker, {"action": "enhancement_info"})["cache_shared"] is False  # not while degraded
        server = RedisServer(port=server.port)  # Redis returns empty (it keeps nothing on disk): "before" is lost
        time.sleep(0.6)
        after = _run(worker, {**chat, "message": "after"})
        assert after["warnings"] == [
            "the shared store holds 2 fewer turns of this conversation than this worker had (Redis lost data, "
            "or the conversation was deleted); serving the shared store's"
        ]
        assert after["history_turns_used"] == 2  # the written-back "during" exchange
        assert _run(worker, {"action": "health"})["store"]["pending_turns"] == 0
        assert _stored_users(bridge, worker.ctx.settings.redis_key_prefix, "outage") == ["during", "after"]
    finally:
        bridge.stop()
        server.stop()


def test_wrong_token_jobs_succeed_with_warnings(bridge: Bridge) -> None:
    worker, _ = _worker(bridge.url, "not-the-bridge-token")
    health = _run(worker, {"action": "health"})  # the first job: the store was probed at start-up
    assert health["status"] == "degraded" and "unauthorized" in " ".join(health["warnings"])
    out = _run(worker, {"action": "chat", "message": "hi", "conversation_id": "w1"})
    assert out["success"] and "unauthorized" in " ".join(out["warnings"])
    assert "not-the-bridge-token" not in str(out) and "not-the-bridge-token" not in str(
        _run(worker, {"action": "health"})
    )
    assert _run(worker, {"action": "enhance", "prompt": "castle"})["success"]


def test_slow_redis_never_hangs_past_the_timeout(tmp_path: Path) -> None:
    slow = Bridge("redis://127.0.0.1:6379/0", TOKEN, tmp_path / "slow.log", delay_ms=3000)
    try:
        worker, _ = _worker(slow.url, TOKEN, redis_timeout_s=0.3)
        started = time.perf_counter()
        out = _run(worker, {"action": "enhance", "prompt": "castle"})
        assert out["success"] and "timeout" in out["warning"]
        assert time.perf_counter() - started < 2.0  # one timed-out call, then the back-off skips Redis
    finally:
        slow.stop()


class _GarbageClient:
    """Answers like a broken proxy would: wrong types and undecodable JSON (a real server can't, on demand)."""

    async def lrange(self, *_: Any) -> Any:
        return "not-a-list"

    async def eval(self, *_: Any) -> Any:
        return "{{not json"

    def multi(self) -> Any:
        raise RuntimeError("rate limit exceeded")

    def pipeline(self) -> Any:
        raise RuntimeError("rate limit exceeded")

    async def delete(self, *_: Any) -> Any:
        return 1


def test_garbage_and_rate_limits_degrade_to_worker_memory() -> None:
    settings = load_settings(
        upstash_redis_rest_url="http://127.0.0.1:1", upstash_redis_rest_token="unreachable-token", admin_token=ADMIN
    )
    store = UpstashStore(settings, client=_GarbageClient())
    worker = Worker(settings, FakeEngine(default=GOOD_TAGS), store)
    first = _run(worker, {"action": "chat", "message": "hi", "conversation_id": "g"})
    second = _run(worker, {"action": "chat", "message": "again", "conversation_id": "g"})
    assert first["success"] and second["success"] and second["history_turns_used"] == 2
    assert _run(worker, {"action": "enhance", "prompt": "castle"})["success"]
    assert store.health().ok is False


def _stored_users(bridge: Bridge, prefix: str, cid: str, **scope: str) -> list[str]:
    """The user turns Redis holds for a conversation, read by a fresh worker (nothing in its memory)."""
    reader, _ = _worker(bridge.url, TOKEN, prefix=prefix)
    out = _run(
        reader,
        {"action": "admin", "command": "conversation_get", "conversation_id": cid, "admin_token": ADMIN, **scope},
    )
    turns = out["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant"] * (len(turns) // 2)  # whole exchanges, in order
    return [t["content"] for t in turns[::2]]


def _raw_users(bridge: Bridge, prefix: str, cid: str, namespace: str = "default") -> list[str]:
    """The user turns in the Redis list itself, in its order (key layout v2, docs/STATE.md)."""
    raw = bridge.command("LRANGE", f"{prefix}:v2:conv:{quote(namespace, safe='')}:{quote(cid, safe='')}", 0, -1)
    assert isinstance(raw, list)
    turns = [json.loads(item) for item in raw]
    assert [t["role"] for t in turns] == ["user", "assistant"] * (len(turns) // 2)
    return [t["content"] for t in turns[::2]]


def test_write_back_after_recovery_races_neither_into_duplicates_nor_errors(tmp_path: Path) -> None:
    """Six chats on one conversation right after Redis returns: the pending turns are written once."""
    server = RedisServer(data_dir=tmp_path)
    bridge = Bridge(server.url, TOKEN, tmp_path / "b.log")
    prefix = f"race-{uuid.uuid4().hex[:8]}"
    try:
        worker, _ = _worker(bridge.url, TOKEN, prefix, redis_timeout_s=1.0, redis_retry_after_s=0.3)
        chat = {"action": "chat", "conversation_id": "r", "max_tokens": 2}

        async def scenario() -> list[dict[str, Any]]:
            assert "warnings" not in await worker.handle({"input": {**chat, "message": "before"}})
            server.stop()
            for text in ("during-1", "during-2"):
                assert (await worker.handle({"input": {**chat, "message": text}}))["success"]
            server.restart()
            await asyncio.sleep(0.4)  # past the back-off: the next calls reach Redis again
            jobs = [worker.handle({"input": {**chat, "message": f"after-{i}"}}) for i in range(6)]
            return list(await asyncio.gather(*jobs))

        outs = asyncio.run(scenario())
        assert [o.get("error_code") for o in outs] == [None] * 6
        users = _stored_users(bridge, prefix, "r")
        assert users[:3] == ["before", "during-1", "during-2"]
        assert sorted(users[3:]) == [f"after-{i}" for i in range(6)]
    finally:
        bridge.stop()
        server.stop()


def test_two_users_with_one_conversation_id_see_only_their_own_turns(two_workers: tuple[LocalApi, LocalApi]) -> None:
    a, b = two_workers
    cid = f"same-id-{uuid.uuid4().hex[:6]}"
    chat = {"action": "chat", "conversation_id": cid, "max_tokens": 4}
    a.output({**chat, "message": "I am Alice.", "user_id": "alice"})
    assert b.output({**chat, "message": "Who am I?", "user_id": "bob"})["history_turns_used"] == 0
    assert b.output({**chat, "message": "Who am I?", "user_id": "alice"})["history_turns_used"] == 2
    assert a.output({**chat, "message": "Anyone?"})["history_turns_used"] == 0  # no user: the default namespace
    assert a.output({**chat, "message": "Team?", "project_id": "alice"})["history_turns_used"] == 0  # not a user

    def users(**scope: str) -> list[str]:
        get = {"action": "admin", "command": "conversation_get", "conversation_id": cid, "admin_token": ADMIN}
        return [t["content"] for t in b.output({**get, **scope})["turns"][::2]]

    assert users(user_id="alice") == ["I am Alice.", "Who am I?"]
    assert users(user_id="bob") == ["Who am I?"] and users() == ["Anyone?"] and users(project_id="alice") == ["Team?"]
    deleted = a.output(
        {
            "action": "admin",
            "command": "conversation_delete",
            "conversation_id": cid,
            "user_id": "bob",
            "admin_token": ADMIN,
        }
    )
    assert deleted["deleted"] is True and users(user_id="bob") == [] and len(users(user_id="alice")) == 2


def test_a_write_that_timed_out_but_landed_is_not_written_twice(bridge: Bridge) -> None:
    prefix = f"late-{uuid.uuid4().hex[:8]}"
    worker, engine = _worker(bridge.url, TOKEN, prefix, redis_timeout_s=0.3, redis_retry_after_s=0.1)

    def slow_write(_: Any) -> str:  # the read is done; the write that follows waits past the timeout
        bridge.set_delay(700)
        return "second reply"

    async def scenario() -> dict[str, Any]:
        chat = {"action": "chat", "conversation_id": "late", "max_tokens": 4}
        await worker.handle({"input": {**chat, "message": "first"}})
        engine.enqueue(slow_write)
        timed_out = await worker.handle({"input": {**chat, "message": "second"}})
        assert "timeout" in " ".join(timed_out["warnings"]) and worker.ctx.store.health().details["pending_turns"] == 2
        await asyncio.sleep(1.0)
        bridge.set_delay(0)
        assert _raw_users(bridge, prefix, "late") == ["first", "second"]  # it landed after all
        return await worker.handle({"input": {**chat, "message": "third"}})  # writes the queued turns back

    third = asyncio.run(scenario())
    assert "warnings" not in third and third["history_turns_used"] == 4
    assert _raw_users(bridge, prefix, "late") == ["first", "second", "third"]


def test_two_workers_fifty_chats_through_a_redis_restart(tmp_path: Path) -> None:
    """50 conversations at once, each alternating between two workers, while Redis stops and restarts."""
    server = RedisServer(data_dir=tmp_path)
    bridge = Bridge(server.url, TOKEN, tmp_path / "b.log")
    prefix = f"chaos-{uuid.uuid4().hex[:8]}"
    try:
        workers = [_worker(bridge.url, TOKEN, prefix, redis_timeout_s=0.5, redis_retry_after_s=0.2)[0] for _ in "ab"]
        for w in workers:
            w.ctx.engine.delay_s = 0.05  # type: ignore[attr-defined]  # the fake engine's latency spreads the chats

        async def conversation(i: int) -> list[dict[str, Any]]:
            outs = []
            for k in range(6):
                payload = {"action": "chat", "conversation_id": f"c{i}", "user_id": f"u{i}", "message": f"c{i}-m{k}"}
                outs.append(await workers[(i + k) % 2].handle({"input": {**payload, "max_tokens": 2}}))
            return outs

        async def outage() -> None:
            await asyncio.sleep(0.05)
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(0.8)
            await asyncio.to_thread(server.restart)

        async def scenario() -> list[list[dict[str, Any]]]:
            down = asyncio.create_task(outage())
            chats = await asyncio.gather(*(conversation(i) for i in range(50)))
            await down
            await asyncio.sleep(0.3)  # past the back-off: write back what each worker still holds
            for w in workers:
                for _ in range(10):  # each job writes back its own conversation and up to 16 others
                    await w.handle({"input": {"action": "chat", "conversation_id": "flush", "message": "flush"}})
            return list(chats)

        chats = asyncio.run(scenario())
        outs = [out for chat in chats for out in chat]
        assert [o.get("error_code") for o in outs] == [None] * 300
        assert any("shared state unavailable" in " ".join(o.get("warnings", [])) for o in outs)  # it did go down
        assert [w.ctx.store.health().details["pending_turns"] for w in workers] == [0, 0]
        for i in range(50):
            assert _raw_users(bridge, prefix, f"c{i}", f"user:u{i}") == [f"c{i}-m{k}" for k in range(6)]
    finally:
        bridge.stop()
        server.stop()


def test_a_list_item_that_is_not_a_turn_does_not_stop_the_writes(bridge: Bridge) -> None:
    prefix = f"junk-{uuid.uuid4().hex[:8]}"
    worker, _ = _worker(bridge.url, TOKEN, prefix)
    bridge.command("RPUSH", f"{prefix}:v2:conv:default:junk", "not json")
    out = _run(worker, {"action": "chat", "conversation_id": "junk", "message": "hello"})
    assert "warnings" not in out  # written, not queued behind a failing script
    fresh, _ = _worker(bridge.url, TOKEN, prefix)  # reads Redis, skipping the item it cannot read
    assert _run(fresh, {"action": "chat", "conversation_id": "junk", "message": "again"})["history_turns_used"] == 2
    raw = bridge.command("LRANGE", f"{prefix}:v2:conv:default:junk", 0, -1)
    assert raw[0] == "not json" and [json.loads(item)["content"] for item in raw[1::2]] == ["hello", "again"]
