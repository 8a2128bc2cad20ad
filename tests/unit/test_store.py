"""Stores: namespaces, whole exchanges, MAX_HISTORY_TURNS=0, the bounded write-back queue."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from handler.app import Worker
from shared.store import MemoryStore, Turn, conversation_namespace
from shared.store.pending import PendingTurns
from shared.store.upstash import UpstashStore
from tests.conftest import ADMIN, make_settings, run
from tests.fakes.engine import FakeEngine


def _exchange(i: int, at: float = 0.0) -> list[Turn]:
    return [Turn("user", f"q{i}", at or float(i)), Turn("assistant", f"a{i}", at or float(i))]


def _contents(turns: list[Turn]) -> list[str]:
    return [t.content for t in turns]


def test_namespace_is_user_then_project_then_default() -> None:
    assert conversation_namespace("u1", "p1") == "user:u1"
    assert conversation_namespace(None, "p1") == "project:p1"
    assert conversation_namespace(None, None) == "default"
    assert conversation_namespace("x", None) != conversation_namespace(None, "x")


def test_one_conversation_id_in_two_namespaces_is_two_conversations() -> None:
    store = MemoryStore()

    async def scenario() -> tuple[list[Turn], list[Turn], bool]:
        await store.append_turns("user:alice", "c", _exchange(1))
        await store.append_turns("user:bob", "c", _exchange(2))
        await store.delete_conversation("user:bob", "c")
        alice = await store.get_turns("user:alice", "c", 10)
        bob = await store.get_turns("user:bob", "c", 10)
        return alice.turns, bob.turns, await store.delete_conversation("default", "c")

    alice, bob, deleted_default = asyncio.run(scenario())
    assert _contents(alice) == ["q1", "a1"] and bob == [] and deleted_default is False


def test_an_odd_bound_keeps_whole_exchanges() -> None:
    store = MemoryStore(max_turns=5)

    async def scenario() -> tuple[list[Turn], list[Turn]]:
        for i in range(4):
            await store.append_turns("default", "c", _exchange(i))
        return (await store.get_turns("default", "c", 5)).turns, (await store.get_turns("default", "c", 3)).turns

    kept, three = asyncio.run(scenario())
    assert _contents(kept) == ["q2", "a2", "q3", "a3"]  # 5 would start with an answer: 4
    assert _contents(three) == ["q3", "a3"]


def test_cache_get_counts_what_the_reader_cannot_use_as_a_miss() -> None:
    store = MemoryStore()

    async def reads() -> list[Any]:
        await store.cache_put("k", {"v": 2})
        return [
            await store.cache_get("k", lambda e: e if e.get("v") == 3 else None),  # unreadable: a miss
            await store.cache_get("absent", dict),  # absent: a miss
            await store.cache_get("k", lambda e: e["v"]),  # readable: a hit, the reader's value
        ]

    assert asyncio.run(reads()) == [None, None, 2]
    stats = asyncio.run(store.cache_stats())
    assert (stats.size, stats.hits, stats.misses) == (1, 1, 2)  # the unreadable entry stays for a put to replace


def test_max_history_turns_zero_keeps_no_history(make_worker: Any) -> None:
    worker = make_worker(max_history_turns=0)
    chat = {"action": "chat", "conversation_id": "none"}
    run(worker, {**chat, "message": "My name is Ada."})
    second = run(worker, {**chat, "message": "What is my name?"})
    assert second["success"] is True and second["history_turns_used"] == 0
    stored = run(
        worker, {"action": "admin", "command": "conversation_get", "conversation_id": "none", "admin_token": ADMIN}
    )
    assert stored["turns"] == []
    held = asyncio.run(worker.ctx.store.get_turns("default", "none", 100))  # nothing kept, not just not read
    assert held.turns == []


class _Unreachable:
    """A client whose every call fails the way a refused connection does; counts the calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.called = asyncio.Event()

    def _fail(self, *_: Any) -> Any:
        self.calls += 1
        self.called.set()

        async def refused() -> None:
            raise ConnectionRefusedError("refused")

        return refused()

    eval = lrange = delete = ping = _fail


def _upstash(client: Any, **overrides: Any) -> UpstashStore:
    settings = make_settings(
        upstash_redis_rest_url="http://127.0.0.1:1",
        upstash_redis_rest_token="unreachable-token",
        **{"redis_retry_after_s": 0, **overrides},
    )
    return UpstashStore(settings, client=client)


def test_max_history_turns_zero_never_writes_to_redis() -> None:
    client = _Unreachable()
    store = _upstash(client, max_history_turns=0)
    asyncio.run(store.append_turns("default", "c", _exchange(1)))
    assert client.calls == 0 and store.pending.total == 0


def test_the_write_back_queue_is_bounded_and_counts_what_it_drops() -> None:
    client = _Unreachable()
    store = _upstash(client, redis_max_pending_turns=4)

    async def scenario() -> None:
        for i in range(3):
            await store.append_turns("default", f"c{i}", _exchange(i))
        await client.called.wait()  # the write-back tried (in the background) and failed

    asyncio.run(scenario())
    health = store.health()
    assert store.pending.total == 4 and health.details["pending_dropped_turns"] == 2
    assert store.pending.conversations() == [("default", "c1"), ("default", "c2")]  # the oldest went
    assert health.ok is False and "2 turns were dropped" in (health.warning or "")


def test_a_flush_removes_only_what_it_wrote() -> None:
    pending = PendingTurns(limit=100)
    key = ("default", "c")
    pending.add(key, _exchange(1))
    batch = pending.peek(key)
    pending.add(key, _exchange(2))  # arrives while the batch is being written
    pending.remove(key, batch)
    assert _contents(pending.peek(key)) == ["q2", "a2"] and pending.total == 2


def test_health_probes_the_store_before_reporting_it() -> None:
    client = _Unreachable()
    settings = make_settings(upstash_redis_rest_url="http://127.0.0.1:1", upstash_redis_rest_token="unreachable-token")
    worker = Worker(settings, FakeEngine(), UpstashStore(settings, client=client))
    health = run(worker, {"action": "health"})  # the first job: nothing has touched the store yet
    assert health["status"] == "degraded" and health["store"]["ok"] is False and health["store"]["checked"] is True


REQUEST: contextvars.ContextVar[str | None] = contextvars.ContextVar("request", default=None)


class _SlowWrites:
    """Reads answer at once (READ script: no tombstone, no turns); writes wait on a gate the test holds.
    Records which request made each call (the write-back runs in a context of its own)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.callers: list[str | None] = []
        self.writes = 0

    async def eval(self, script: str, keys: list[str], args: list[str]) -> Any:
        self.callers.append(REQUEST.get())
        if "LRANGE" in script:
            return ["", []]
        self.writes += 1
        await self.gate.wait()
        return 1


def test_a_request_waits_on_one_read_never_on_the_backlog() -> None:
    client = _SlowWrites()
    store = _upstash(client, redis_timeout_s=30)

    async def scenario() -> tuple[int, int, list[str]]:
        for i in range(16):  # another conversation's backlog, its writes stuck in flight
            await store.append_turns("default", f"other-{i}", _exchange(i))
        REQUEST.set("mine")
        held = await store.get_turns("default", "mine", 10)
        await store.append_turns("default", "mine", _exchange(99))
        mine = client.callers.count("mine")
        client.gate.set()
        assert await store.writeback.drain(30) == 0
        return mine, client.writes, _contents(held.turns)

    mine, writes, held = asyncio.run(scenario())
    assert mine == 1 and held == []  # its own read only: no write, nobody else's backlog
    assert writes == 17 and store.pending.total == 0  # everything written in the background


class _DownThenUp:
    """Refuses the first `failures` calls, then answers every write."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.writes = 0

    async def eval(self, *_: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError("refused")
        self.writes += 1
        return 1


def test_the_write_back_retries_by_itself_when_the_store_returns() -> None:
    client = _DownThenUp(failures=3)
    store = _upstash(client, redis_retry_after_s=0.01)

    async def scenario() -> int:
        await store.append_turns("default", "c", _exchange(1))  # the only request
        return await store.writeback.drain(60)  # waits for the queue to empty; sends nothing itself

    assert asyncio.run(scenario()) == 0 and client.writes == 1 and client.failures == 0


def test_shutdown_reports_what_it_could_not_write(caplog: Any) -> None:
    store = _upstash(_Unreachable(), redis_retry_after_s=0.01)

    async def scenario() -> int:
        await store.append_turns("default", "c", _exchange(1))
        return await store.close(0.2)

    assert asyncio.run(scenario()) == 2 and store.pending.total == 2
    assert "2 of 2 queued turns (1 conversations) could not be written" in caplog.text
    assert "q1" not in caplog.text  # counts, never text


def test_a_delete_the_shared_store_cannot_confirm_fails_as_store_unavailable() -> None:
    """Redis unreachable: this worker's copy and queued turns go, and the answer is a retryable
    failure naming the conversation, not `deleted: true` while the shared copy stays."""
    client = _Unreachable()
    store = _upstash(client)
    asyncio.run(store.append_turns("default", "c", _exchange(1)))
    settings = make_settings(upstash_redis_rest_url="http://127.0.0.1:1", upstash_redis_rest_token="unreachable-token")
    worker = Worker(settings, FakeEngine(), store)
    out = run(
        worker, {"action": "admin", "command": "conversation_delete", "conversation_id": "c", "admin_token": ADMIN}
    )
    assert out["success"] is False and out["error_code"] == "store_unavailable" and out["field"] == "conversation_id"
    assert store.pending.total == 0
    assert asyncio.run(store.local.get_turns("default", "c", 10)).turns == []


def test_drain_ends_the_driver_even_when_a_cancel_is_swallowed() -> None:
    """Python 3.11's wait_for can swallow a cancel that meets its inner future finishing; a driver
    that lost one cancel must not keep shutdown waiting (it is cancelled until it ends)."""
    from shared.store.writeback import WriteBack

    swallowed = []

    async def write(key: Any, batch: list[Turn]) -> None:
        never = asyncio.Event()
        try:
            await never.wait()
        except asyncio.CancelledError:
            if swallowed:
                raise
            swallowed.append(key)  # the first cancel is lost, as in the 3.11 race
            await never.wait()

    async def scenario() -> tuple[bool, int]:
        pending = PendingTurns(limit=100)
        pending.add(("default", "c"), _exchange(1))
        driver = WriteBack(pending, write, lambda: 0.0)
        driver.kick()
        await asyncio.sleep(0)  # the driver starts its write
        drain = asyncio.ensure_future(driver.drain(0.0))
        done, _ = await asyncio.wait({drain}, timeout=30)  # a hang guard, not a time bound
        return drain in done, pending.total

    ended, left = asyncio.run(scenario())
    assert ended and left == 2 and swallowed == [("default", "c")]
