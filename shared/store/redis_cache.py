"""The enhancement cache on Redis: shared by every worker, LRU-bounded across them, with hit/miss counters.

Keys (docs/STATE.md): {p}:v2:cache:{key} (JSON body, TTL), {p}:v2:cache-index (key -> last use),
{p}:v2:stats:{hits|misses}. When Redis fails, reads are misses served by the model (or hits from
this worker's memory) and writes go to worker memory.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from shared.store import scripts
from shared.store.base import CacheStats
from shared.store.memory import MemoryStore
from shared.store.redis_call import BAD_ANSWER, Guard, RedisUnavailable

T = TypeVar("T")


class RedisCache:
    def __init__(self, client: Any, guard: Guard, prefix: str, local: MemoryStore, size: int, ttl_s: float) -> None:
        self.client, self.guard, self.local = client, guard, local
        self.size, self.ttl_s = size, ttl_s
        self.k_cache, self.k_index = f"{prefix}:cache:", f"{prefix}:cache-index"
        self.k_hits, self.k_misses = f"{prefix}:stats:hits", f"{prefix}:stats:misses"

    async def get(self, key: str, read: Callable[[dict[str, Any]], T | None]) -> T | None:
        keys = [self.k_cache + key, self.k_index, self.k_hits, self.k_misses]
        try:
            raw = await self.guard.call(self.client.eval, scripts.CACHE_GET, keys, [str(time.time())])
            value = json.loads(raw) if raw is not None else None
        except (RedisUnavailable, *BAD_ANSWER):
            return await self.local.cache_get(key, read)
        found = read(value) if isinstance(value, dict) else None
        if found is None and raw is not None:  # the script counted a hit for a body nobody can use
            with contextlib.suppress(RedisUnavailable, *BAD_ANSWER):  # down now: off by one until it is back
                await self.guard.call(self.client.eval, scripts.CACHE_UNREADABLE, [self.k_hits, self.k_misses], [])
        return found

    async def put(self, key: str, value: dict[str, Any]) -> None:
        if self.size <= 0:
            return
        args = [json.dumps(value), str(int(self.ttl_s)), str(time.time()), str(self.size)]
        try:
            await self.guard.call(self.client.eval, scripts.CACHE_PUT, [self.k_cache + key, self.k_index], args)
        except (RedisUnavailable, *BAD_ANSWER):
            await self.local.cache_put(key, value)

    async def clear(self) -> int:
        local = await self.local.cache_clear()
        try:
            return int(await self.guard.call(self.client.eval, scripts.CACHE_CLEAR, [self.k_index], []))
        except (RedisUnavailable, *BAD_ANSWER):
            return local

    async def stats(self) -> CacheStats:
        async def counts() -> Any:
            tx = self.client.pipeline()
            tx.zcard(self.k_index)
            tx.get(self.k_hits)
            tx.get(self.k_misses)
            return await tx.exec()

        try:
            size, hits, misses = await self.guard.call(counts)
            return CacheStats(int(size or 0), int(hits or 0), int(misses or 0))
        except (RedisUnavailable, *BAD_ANSWER):
            return await self.local.cache_stats()
