"""In-process store: the embedded default. State lives as long as the worker process."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from shared.store.base import CacheStats, Store, StoredHistory, StoreHealth, Turn, whole_exchanges

ConversationKey = tuple[str, str]  # (namespace, conversation id)
T = TypeVar("T")


class MemoryStore(Store):
    backend = "memory"

    def __init__(
        self,
        max_turns: int = 40,
        conversation_ttl_s: float = 7 * 24 * 3600,
        cache_size: int = 1000,
        cache_ttl_s: float = 24 * 3600,
        max_conversations: int = 10_000,
    ) -> None:
        self.max_turns = max_turns  # 0 keeps no history at all
        self.conversation_ttl_s = conversation_ttl_s
        self.cache_size = cache_size
        self.cache_ttl_s = cache_ttl_s
        self.max_conversations = max_conversations
        # (namespace, id) -> (turns, last write); ordered by last write for eviction
        self._conversations: OrderedDict[ConversationKey, tuple[list[Turn], float]] = OrderedDict()
        self._cache: OrderedDict[str, tuple[dict[str, Any], float]] = OrderedDict()
        self._hits = 0
        self._misses = 0

    # ---- conversations -------------------------------------------------------
    async def append_turns(self, namespace: str, conversation_id: str, turns: list[Turn]) -> None:
        key = (namespace, conversation_id)
        entry = self._live_conversation(key, time.time())
        self.replace_turns(namespace, conversation_id, (entry[0] if entry else []) + turns)

    def replace_turns(self, namespace: str, conversation_id: str, turns: list[Turn]) -> None:
        """Hold exactly `turns` (bounded to whole exchanges); the shared store uses it to mirror Redis."""
        if self.max_turns <= 0:
            return
        key = (namespace, conversation_id)
        kept = whole_exchanges(turns, self.max_turns)
        if not kept:
            self._conversations.pop(key, None)
            return
        self._conversations[key] = (kept, time.time())
        self._conversations.move_to_end(key)
        while len(self._conversations) > self.max_conversations:
            self._conversations.popitem(last=False)

    async def get_turns(self, namespace: str, conversation_id: str, limit: int) -> StoredHistory:
        entry = self._live_conversation((namespace, conversation_id), time.time())
        return StoredHistory(whole_exchanges(entry[0], limit) if entry else [])

    async def delete_conversation(self, namespace: str, conversation_id: str) -> bool:
        return self._conversations.pop((namespace, conversation_id), None) is not None

    def _live_conversation(self, key: ConversationKey, now: float) -> tuple[list[Turn], float] | None:
        entry = self._conversations.get(key)
        if entry is not None and now - entry[1] > self.conversation_ttl_s:
            del self._conversations[key]
            return None
        return entry

    # ---- enhancement cache ---------------------------------------------------
    async def cache_get(self, key: str, read: Callable[[dict[str, Any]], T | None]) -> T | None:
        entry = self._cache.get(key)
        if entry is not None and time.time() - entry[1] > self.cache_ttl_s:
            del self._cache[key]
            entry = None
        value = None if entry is None else read(entry[0])
        if value is None:  # absent, expired or unreadable; an unreadable entry stays for the put to replace
            self._misses += 1
            return None
        self._cache.move_to_end(key)  # LRU: a hit keeps the entry young
        self._hits += 1
        return value

    async def cache_put(self, key: str, value: dict[str, Any]) -> None:
        if self.cache_size <= 0:
            return
        self._cache[key] = (value, time.time())
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    async def cache_clear(self) -> int:
        count = len(self._cache)
        self._cache.clear()
        return count

    async def cache_stats(self) -> CacheStats:
        return CacheStats(len(self._cache), self._hits, self._misses)

    def health(self) -> StoreHealth:
        return StoreHealth(
            backend=self.backend,
            shared=False,
            warning="state is kept in this worker only (set UPSTASH_REDIS_REST_URL/TOKEN to share it)",
        )
