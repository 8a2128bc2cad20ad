"""Shared state through the real upstash-redis SDK, the local bridge and a real Redis."""

from __future__ import annotations

import asyncio
import contextvars
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
from shared.store import Turn
from shared.store.redis_call import make_client
from shared.store.upstash import UpstashStore
from tests.e2e.conftest import ADMIN, LocalApi
from tests.e2e.redis_helpers import Bridge, RedisServer, until
from tests.fakes.clock import FakeClock
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
REQUEST: contextvars.ContextVar[str | None] = contextvars.ContextVar("request", default=None)


class _Counting:
    """The real SDK client, recording which request (REQUEST) made each call; the write-back runs in
    a context of its own, so its calls count as None."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[tuple[str | None, str]] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.client, name)
        if name not in ("eval", "lrange", "delete", "ping"):
            return target

        async def call(*args: Any) -> Any:
            self.calls.append((REQUEST.get(), name))
            return await target(*args)

        return call

    def of(self, request: str) -> list[str]:
        return [name for who, name in self.calls if who == request]


def _worker(
    bridge_url: str, token: str, prefix: str | None = None, clock: FakeClock | None = None, **extra: Any
) -> tuple[Worker, FakeEngine]:
    settings = load_settings(
        upstash_redis_rest_url=bridge_url,
        upstash_redis_rest_token=token,
        redis_key_prefix=prefix or f"fault-{uuid.uuid4().hex[:8]}",
        admin_token=ADMIN,
        **extra,
    )
    engine = FakeEngine(default=GOOD_TAGS)
    store = UpstashStore(settings, client=_Counting(make_client(settings)), clock=clock or time.monotonic)
    return Worker(settings, engine, store), engine


def _store(worker: Worker) -> UpstashStore:
    store = worker.ctx.store
    assert isinstance(store, UpstashStore)
    return store


async def _written(*workers: Worker) -> None:
    """Until every worker's write-back queue is empty (the write-back runs by itself)."""
    await until(lambda: all(_store(w).pending.total == 0 for w in workers), what="write-back done")


def _run(worker: Worker, payload: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(worker.handle({"input": payload}))


def test_redis_stopped_mid_run_then_written_back(tmp_path: Path) -> None:
    server = RedisServer()
    bridge = Bridge(server.url, TOKEN, tmp_path / "b.log")
    clock = FakeClock()
    try:
        worker, _ = _worker(bridge.url, TOKEN, clock=clock, redis_timeout_s=1.0, redis_retry_after_s=5.0)
        chat = {"action": "chat", "conversation_id": "outage"}

        async def scenario() -> UpstashStore:
            nonlocal server
            assert "warnings" not in await worker.handle({"input": {**chat, "message": "before"}})
            await _written(worker)
            server.stop()
            during = await worker.handle({"input": {**chat, "message": "during"}})
            assert during["success"] and "shared state unavailable" in " ".join(during["warnings"])
            assert during["history_turns_used"] == 2  # served from worker memory
            enhanced = await worker.handle({"input": {"action": "enhance", "prompt": "castle"}})
            assert enhanced["success"] and "shared state unavailable" in enhanced["warning"]
            health = await worker.handle({"input": {"action": "health"}})
            assert health["status"] == "degraded" and health["store"]["pending_turns"] == 2  # the clock stands
            info = await worker.handle({"input": {"action": "enhancement_info"}})
            assert info["cache_shared"] is False  # not while degraded
            server = RedisServer(port=server.port)  # Redis returns empty (nothing on disk): "before" is lost
            clock.advance(5.0)  # the back-off is over: the write-back retries on its own
            await _written(worker)
            after = await worker.handle({"input": {**chat, "message": "after"}})
            assert after["warnings"] == [
                "the shared store holds 2 fewer turns of this conversation than this worker had (Redis lost "
                "data, or the conversation was deleted); serving the shared store's"
            ]
            assert after["history_turns_used"] == 2  # the written-back "during" exchange
            await _written(worker)
            return _store(worker)

        assert asyncio.run(scenario()).health().details["pending_turns"] == 0
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
        clock = FakeClock()
        worker, _ = _worker(slow.url, TOKEN, clock=clock, redis_timeout_s=0.3, redis_retry_after_s=5.0)
        assert _store(worker).failure == "timeout"  # the start-up probe already timed out
        clock.advance(5.0)  # its back-off is over

        async def scenario() -> dict[str, Any]:
            REQUEST.set("enhance")
            return await worker.handle({"input": {"action": "enhance", "prompt": "castle"}})

        out = asyncio.run(scenario())
        assert out["success"] and "timeout" in out["warning"]
        client = _store(worker).client
        assert isinstance(client, _Counting)
        assert client.of("enhance") == ["eval"]  # one timed-out cache read; the back-off skips the cache write
    finally:
        slow.stop()


def test_slow_redis_adds_one_call_to_a_chat(tmp_path: Path) -> None:
    """Redis answering in 1.5 s per call, 16 other conversations queued: the chat makes one call (its read)."""
    slow = Bridge("redis://127.0.0.1:6379/0", TOKEN, tmp_path / "slow.log", delay_ms=1500)
    prefix = f"slow-{uuid.uuid4().hex[:8]}"
    try:
        worker, _ = _worker(slow.url, TOKEN, prefix, redis_timeout_s=5.0)
        store = _store(worker)

        async def scenario() -> dict[str, Any]:
            for i in range(16):  # the backlog, written in the background meanwhile
                await store.append_turns(
                    "default", f"other-{i}", [Turn("user", f"o{i}", 1.0), Turn("assistant", "r", 1.0)]
                )
            ctx = contextvars.copy_context()
            ctx.run(REQUEST.set, "chat")
            chat = {"action": "chat", "conversation_id": "mine", "message": "hello", "max_tokens": 2}
            out = await asyncio.create_task(worker.handle({"input": chat}), context=ctx)
            await _written(worker)
            return out

        out = asyncio.run(scenario())
        assert out["success"] and "warnings" not in out
        client = store.client
        assert isinstance(client, _Counting)
        assert client.of("chat") == ["eval"]  # the READ script; its write and the backlog's went in the background
        assert len(client.of(None)) >= 17  # the write-back wrote all 17 conversations
        assert _raw_users(slow, prefix, "mine") == ["hello"]
        assert all(_raw_users(slow, prefix, f"other-{i}") == [f"o{i}"] for i in range(16))
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
    clock = FakeClock()
    try:
        worker, _ = _worker(bridge.url, TOKEN, prefix, clock, redis_timeout_s=1.0, redis_retry_after_s=5.0)
        chat = {"action": "chat", "conversation_id": "r", "max_tokens": 2}

        async def scenario() -> list[dict[str, Any]]:
            assert "warnings" not in await worker.handle({"input": {**chat, "message": "before"}})
            await _written(worker)
            server.stop()
            for text in ("during-1", "during-2"):
                assert (await worker.handle({"input": {**chat, "message": text}}))["success"]
            server.restart()
            clock.advance(5.0)  # past the back-off: the next calls reach Redis again
            jobs = [worker.handle({"input": {**chat, "message": f"after-{i}"}}) for i in range(6)]
            outs = list(await asyncio.gather(*jobs))
            await _written(worker)
            return outs

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
    clock = FakeClock()
    worker, engine = _worker(bridge.url, TOKEN, prefix, clock, redis_timeout_s=0.3, redis_retry_after_s=5.0)
    store = _store(worker)

    def slow_write(_: Any) -> str:  # the read is done; the write that follows waits past the timeout
        bridge.set_delay(700)
        return "second reply"

    async def scenario() -> dict[str, Any]:
        chat = {"action": "chat", "conversation_id": "late", "max_tokens": 4}
        await worker.handle({"input": {**chat, "message": "first"}})
        await _written(worker)
        engine.enqueue(slow_write)
        assert "warnings" not in await worker.handle({"input": {**chat, "message": "second"}})
        await until(lambda: store.failure == "timeout", what="the write timed out")
        assert store.pending.total == 2  # kept for the next write (the clock stands: no retry yet)
        await until(lambda: _raw_users(bridge, prefix, "late") == ["first", "second"], what="it landed after all")
        bridge.set_delay(0)
        clock.advance(5.0)  # the back-off is over: the write-back sends the turns again, by itself
        await _written(worker)
        third = await worker.handle({"input": {**chat, "message": "third"}})
        await _written(worker)
        return third

    third = asyncio.run(scenario())
    assert "warnings" not in third and third["history_turns_used"] == 4
    assert _raw_users(bridge, prefix, "late") == ["first", "second", "third"]  # "second" once


def test_two_workers_fifty_chats_through_a_redis_restart(tmp_path: Path) -> None:
    """50 conversations at once, each alternating between two workers, while Redis stops and restarts."""
    server = RedisServer(data_dir=tmp_path)
    bridge = Bridge(server.url, TOKEN, tmp_path / "b.log")
    prefix = f"chaos-{uuid.uuid4().hex[:8]}"
    try:
        workers = [_worker(bridge.url, TOKEN, prefix, redis_timeout_s=0.5, redis_retry_after_s=0.2)[0] for _ in "ab"]
        for w in workers:
            w.ctx.engine.delay_s = 0.05  # type: ignore[attr-defined]  # the fake engine's latency spreads the chats
        done = 0
        progress = asyncio.Condition()

        async def conversation(i: int) -> list[dict[str, Any]]:
            nonlocal done
            outs = []
            for k in range(6):
                payload = {"action": "chat", "conversation_id": f"c{i}", "user_id": f"u{i}", "message": f"c{i}-m{k}"}
                outs.append(await workers[(i + k) % 2].handle({"input": {**payload, "max_tokens": 2}}))
                async with progress:
                    done += 1
                    progress.notify_all()
            return outs

        async def after(count: int) -> None:
            async with progress:
                await progress.wait_for(lambda: done >= count)

        async def outage() -> None:
            await after(50)  # Redis stops after 50 of the 300 chats, returns after 150
            await asyncio.to_thread(server.stop)
            await after(150)
            await asyncio.to_thread(server.restart)

        async def scenario() -> list[list[dict[str, Any]]]:
            down = asyncio.create_task(outage())
            chats = await asyncio.gather(*(conversation(i) for i in range(50)))
            await down
            await _written(*workers)  # no request needed: each write-back retries once Redis answers
            return list(chats)

        chats = asyncio.run(scenario())
        outs = [out for chat in chats for out in chat]
        assert [o.get("error_code") for o in outs] == [None] * 300
        assert any("shared state unavailable" in " ".join(o.get("warnings", [])) for o in outs)  # it did go down
        for i in range(50):
            assert _raw_users(bridge, prefix, f"c{i}", f"user:u{i}") == [f"c{i}-m{k}" for k in range(6)]
    finally:
        bridge.stop()
        server.stop()


def test_a_list_item_that_is_not_a_turn_does_not_stop_the_writes(bridge: Bridge) -> None:
    prefix = f"junk-{uuid.uuid4().hex[:8]}"
    worker, _ = _worker(bridge.url, TOKEN, prefix)
    bridge.command("RPUSH", f"{prefix}:v2:conv:default:junk", "not json")
    fresh, _ = _worker(bridge.url, TOKEN, prefix)  # reads Redis, skipping the item it cannot read

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        out = await worker.handle({"input": {"action": "chat", "conversation_id": "junk", "message": "hello"}})
        await _written(worker)
        assert _store(worker).health().ok  # written, not failing behind a script that stops at the item
        again = await fresh.handle({"input": {"action": "chat", "conversation_id": "junk", "message": "again"}})
        await _written(fresh)
        return out, again

    out, again = asyncio.run(scenario())
    assert "warnings" not in out and again["history_turns_used"] == 2
    raw = bridge.command("LRANGE", f"{prefix}:v2:conv:default:junk", 0, -1)
    assert raw[0] == "not json" and [json.loads(item)["content"] for item in raw[1::2]] == ["hello", "again"]


# ---- deletes stay deleted ---------------------------------------------------------------
def test_a_delete_during_a_flush_in_flight_stays_deleted(bridge: Bridge, tmp_path: Path) -> None:
    """Worker A's write is held in a slow bridge when worker B (a fast bridge, same Redis) deletes:
    the write lands after the delete and is skipped (the tombstone), so nothing comes back."""
    slow = Bridge("redis://127.0.0.1:6379/0", TOKEN, tmp_path / "slow.log")
    prefix = f"del-{uuid.uuid4().hex[:8]}"
    try:
        a, _ = _worker(slow.url, TOKEN, prefix, redis_timeout_s=10.0)
        b, _ = _worker(bridge.url, TOKEN, prefix)
        chat = {"action": "chat", "conversation_id": "d", "max_tokens": 2}
        delete = {"action": "admin", "command": "conversation_delete", "conversation_id": "d", "admin_token": ADMIN}

        async def scenario() -> dict[str, Any]:
            await a.handle({"input": {**chat, "message": "one"}})
            await _written(a)
            slow.set_delay(3000)
            sent = slow.stats()["received"]
            await a.handle({"input": {**chat, "message": "two"}})  # its read waits out the delay too
            await until(lambda: slow.stats()["received"] >= sent + 2, what="A's write sent")  # read, then write
            assert slow.stats()["in_flight"] == 1  # the write, held before Redis runs it
            deleted = await b.handle({"input": delete})
            await _written(a)  # the write ran after the delete
            return deleted

        deleted = asyncio.run(scenario())
        assert deleted["deleted"] is True
        assert _raw_users(bridge, prefix, "d") == []
        assert bridge.command("EXISTS", f"{prefix}:v2:seen:default:d") == 0
    finally:
        slow.stop()


def test_a_delete_stays_deleted_with_another_workers_queued_turns(tmp_path: Path) -> None:
    """Worker B queues turns while Redis is away; worker A deletes the conversation once Redis is back;
    B's write-back then writes nothing of it, and a new turn after the delete starts it afresh."""
    server = RedisServer(data_dir=tmp_path)
    bridge = Bridge(server.url, TOKEN, tmp_path / "b.log")
    prefix = f"del2-{uuid.uuid4().hex[:8]}"
    clock = FakeClock()
    try:
        a, _ = _worker(bridge.url, TOKEN, prefix, redis_timeout_s=1.0)
        b, _ = _worker(bridge.url, TOKEN, prefix, clock, redis_timeout_s=1.0, redis_retry_after_s=5.0)
        chat = {"action": "chat", "conversation_id": "q", "max_tokens": 2}
        delete = {"action": "admin", "command": "conversation_delete", "conversation_id": "q", "admin_token": ADMIN}

        async def scenario() -> dict[str, Any]:
            await a.handle({"input": {**chat, "message": "one"}})
            await _written(a)
            server.stop()
            assert "warnings" in await b.handle({"input": {**chat, "message": "two"}})
            server.restart()
            assert _store(b).pending.total == 2  # B's clock stands: its queue waits
            assert (await a.handle({"input": delete}))["deleted"] is True
            clock.advance(5.0)  # B's back-off is over: its write-back sends "two", which the tombstone skips
            await _written(b)
            assert _raw_users(bridge, prefix, "q") == []
            three = await b.handle({"input": {**chat, "message": "three"}})
            await _written(b)
            return three

        three = asyncio.run(scenario())
        assert three["history_turns_used"] == 0  # nothing from before the delete, not even B's own memory
        assert _raw_users(bridge, prefix, "q") == ["three"]  # a new conversation under the same id
    finally:
        bridge.stop()
        server.stop()
