"""Shared state on Upstash Redis (REST), so that every worker sees the same cache and conversations.

Keys (prefix from REDIS_KEY_PREFIX, versioned so a format change never reads stale data):
  {p}:v1:conv:{id}        list of JSON turns (RPUSH + LTRIM + EXPIRE in one MULTI/EXEC)
  {p}:v1:cache:{key}      JSON body with TTL
  {p}:v1:cache-index      sorted set key -> last use, the size bound shared by all workers
  {p}:v1:stats:{hits|misses}  shared counters

When Redis misbehaves (unreachable, slow, 401, rate-limited, garbage) jobs still succeed:
reads fall back to this worker's memory, conversation turns are kept locally and written
back when Redis answers again, and `health()` carries a warning. Every call has a hard
timeout; after a failure Redis is left alone for a short back-off so jobs do not each
pay the timeout. Credentials never reach logs or outputs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from upstash_redis.asyncio import Redis

from shared.settings import Settings
from shared.store.base import CacheStats, Store, StoreHealth, Turn
from shared.store.memory import MemoryStore

log = logging.getLogger(__name__)
T = TypeVar("T")
FORMAT = "v1"

# GET with LRU bookkeeping and shared hit/miss counters in one round trip.
_GET = """
local v = redis.call('GET', KEYS[1])
if v then
  redis.call('ZADD', KEYS[2], ARGV[1], KEYS[1]); redis.call('INCR', KEYS[3])
else
  redis.call('ZREM', KEYS[2], KEYS[1]); redis.call('INCR', KEYS[4])
end
return v
"""
# SET with TTL, index it, drop index entries idle past the TTL, evict least recently used beyond the bound.
_PUT = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3] - ARGV[2])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if excess > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
  for _, k in ipairs(old) do redis.call('DEL', k) end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
end
return 1
"""
_CLEAR = """
local keys = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, k in ipairs(keys) do redis.call('DEL', k) end
redis.call('DEL', KEYS[1])
return #keys
"""


class RedisUnavailable(Exception):
    """Any Redis failure, reduced to its kind (never its message: it may carry the URL)."""


class UpstashStore(Store):
    backend = "upstash"

    def __init__(self, settings: Settings, client: Any = None) -> None:
        assert settings.upstash_redis_rest_url and settings.upstash_redis_rest_token
        self.client = client or Redis(
            url=settings.upstash_redis_rest_url.rstrip("/"),
            token=settings.upstash_redis_rest_token.get_secret_value(),
            rest_encoding=None,
            rest_retries=0,  # our own timeout and back-off decide; the SDK's 3 s retry would not fit
            allow_telemetry=False,
        )
        self.timeout_s = settings.redis_timeout_s
        self.retry_after_s = settings.redis_retry_after_s
        self.max_turns = settings.max_history_turns
        self.conversation_ttl_s = settings.conversation_ttl_s
        self.cache_size = settings.enhance_cache_size
        self.cache_ttl_s = settings.enhance_cache_ttl_s
        p = f"{settings.redis_key_prefix}:{FORMAT}"
        self.k_conv, self.k_cache, self.k_index = f"{p}:conv:", f"{p}:cache:", f"{p}:cache-index"
        self.k_hits, self.k_misses = f"{p}:stats:hits", f"{p}:stats:misses"
        self.local = MemoryStore(self.max_turns, self.conversation_ttl_s, self.cache_size, self.cache_ttl_s)
        self.pending: dict[str, list[Turn]] = {}  # turns not yet written to Redis, in order
        self.failure: str | None = None
        self.retry_at = 0.0

    # ---- the guarded call --------------------------------------------------------
    async def _call(self, op: Awaitable[T]) -> T:
        if self.failure and time.monotonic() < self.retry_at:
            if asyncio.iscoroutine(op):
                op.close()
            raise RedisUnavailable(self.failure)
        try:
            result = await asyncio.wait_for(op, self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - every failure kind degrades the same way
            kind = "timeout" if isinstance(exc, TimeoutError) else _kind(exc)
            if self.failure != kind:
                log.warning("redis unavailable (%s); serving from worker memory", kind)
            self.failure, self.retry_at = kind, time.monotonic() + self.retry_after_s
            raise RedisUnavailable(kind) from None
        if self.failure:
            log.info("redis is back")
            self.failure = None
        return result

    async def _flush_pending(self) -> None:
        for cid in list(self.pending):
            turns = self.pending[cid]
            await self._call(self._append(cid, turns))
            del self.pending[cid]

    # ---- conversations -------------------------------------------------------------
    async def _append(self, conversation_id: str, turns: list[Turn]) -> Any:
        key = self.k_conv + conversation_id
        tx = self.client.multi()
        tx.rpush(key, *[json.dumps(t.to_dict()) for t in turns])
        if self.max_turns:
            tx.ltrim(key, -self.max_turns, -1)
        tx.expire(key, self.conversation_ttl_s)
        return await tx.exec()

    async def append_turns(self, conversation_id: str, turns: list[Turn]) -> None:
        await self.local.append_turns(conversation_id, turns)
        try:
            await self._flush_pending()
            await self._call(self._append(conversation_id, turns))
        except RedisUnavailable:
            self.pending.setdefault(conversation_id, []).extend(turns)

    async def get_turns(self, conversation_id: str, limit: int) -> list[Turn]:
        if limit <= 0:
            return []
        try:
            await self._flush_pending()
            raw = await self._call(self.client.lrange(self.k_conv + conversation_id, -limit, -1))
            return [Turn.from_dict(json.loads(item)) for item in raw or []]
        except (RedisUnavailable, ValueError, TypeError, AttributeError):
            return await self.local.get_turns(conversation_id, limit)

    async def delete_conversation(self, conversation_id: str) -> bool:
        self.pending.pop(conversation_id, None)
        local = await self.local.delete_conversation(conversation_id)
        try:
            return bool(await self._call(self.client.delete(self.k_conv + conversation_id))) or local
        except RedisUnavailable:
            return local

    # ---- enhancement cache ---------------------------------------------------------
    async def cache_get(self, key: str) -> dict[str, Any] | None:
        keys = [self.k_cache + key, self.k_index, self.k_hits, self.k_misses]
        try:
            raw = await self._call(self.client.eval(_GET, keys, [str(time.time())]))
            value = json.loads(raw) if raw is not None else None
            return value if isinstance(value, dict) else None
        except (RedisUnavailable, ValueError, TypeError):
            return await self.local.cache_get(key)

    async def cache_put(self, key: str, value: dict[str, Any]) -> None:
        if self.cache_size <= 0:
            return
        args = [json.dumps(value), str(int(self.cache_ttl_s)), str(time.time()), str(self.cache_size)]
        try:
            await self._call(self.client.eval(_PUT, [self.k_cache + key, self.k_index], args))
        except RedisUnavailable:
            await self.local.cache_put(key, value)

    async def cache_clear(self) -> int:
        local = await self.local.cache_clear()
        try:
            return int(await self._call(self.client.eval(_CLEAR, [self.k_index], [])))
        except (RedisUnavailable, ValueError, TypeError):
            return local

    async def cache_stats(self) -> CacheStats:
        try:
            tx = self.client.pipeline()
            tx.zcard(self.k_index)
            tx.get(self.k_hits)
            tx.get(self.k_misses)
            size, hits, misses = await self._call(tx.exec())
            return CacheStats(int(size or 0), int(hits or 0), int(misses or 0))
        except (RedisUnavailable, ValueError, TypeError):
            return await self.local.cache_stats()

    def health(self) -> StoreHealth:
        pending = sum(len(t) for t in self.pending.values())
        warning = None
        if self.failure:
            warning = f"shared state unavailable ({self.failure}); serving from worker memory"
            if pending:
                warning += f", {pending} turns to write back"
        return StoreHealth(
            backend=self.backend,
            shared=True,
            ok=self.failure is None,
            warning=warning,
            details={"pending_turns": pending},
        )


def _kind(exc: BaseException) -> str:
    text = str(exc).lower()
    if "unauthorized" in text or "401" in text or "invalid token" in text:
        return "unauthorized"
    if "rate" in text and "limit" in text:
        return "rate_limited"
    if isinstance(exc, (ValueError, TypeError, KeyError)):
        return "bad_response"
    return type(exc).__name__
