"""Shared state on Upstash Redis (REST), so that every worker sees the same cache and conversations.

Keys (prefix from REDIS_KEY_PREFIX, then the layout version; docs/STATE.md has the table):
  {p}:v2:conv:{namespace}:{id}   list of JSON turns, written by the APPEND script
  {p}:v2:seen:{namespace}:{id}   sorted set of the turn ids written (so a re-sent turn is skipped)
  {p}:v2:gone:{namespace}:{id}   tombstone: the time of the last delete (older turns are never written)
  {p}:v2:cache:{key} ...         the enhancement cache (redis_cache.py)

This module is the conversation side and the composition: the guarded call (timeout, back-off)
is redis_call.py, the background write-back writeback.py, the queue pending.py, the cache
redis_cache.py. When Redis misbehaves (unreachable, slow, 401, rate-limited, garbage) jobs still
succeed: reads fall back to this worker's memory, turns wait in the queue and the write-back
task writes them (once, in order) when Redis answers again, and `health()` carries a warning.
A request waits on at most one Redis call of its own (the read of its conversation); writes
never hold it up. Credentials never reach logs or outputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from shared.errors import StoreUnavailable
from shared.settings import Settings
from shared.store import scripts
from shared.store.base import CacheStats, Store, StoredHistory, StoreHealth, Turn, whole_exchanges
from shared.store.memory import MemoryStore
from shared.store.pending import ConversationKey, PendingTurns
from shared.store.redis_cache import RedisCache
from shared.store.redis_call import BAD_ANSWER, Clock, Guard, RedisUnavailable, failure_kind, make_client
from shared.store.writeback import WriteBack

log = logging.getLogger(__name__)
T = TypeVar("T")
FORMAT = "v2"  # v1 keyed conversations by id alone; its keys are never read and expire by their TTL
WRITE_CONCURRENCY = 8  # conversations the write-back writes at once
SHUTDOWN_RETRY_S = 1.0  # while draining at shutdown, a failing Redis is retried this often

__all__ = ["RedisUnavailable", "UpstashStore"]


class UpstashStore(Store):
    backend = "upstash"

    def __init__(self, settings: Settings, client: Any = None, clock: Clock = time.monotonic) -> None:
        self.settings = settings
        self.client = client or make_client(settings)
        self.guard = Guard(settings.redis_timeout_s, settings.redis_retry_after_s, clock)
        self.max_turns = settings.max_history_turns
        self.conversation_ttl_s = settings.conversation_ttl_s
        self.prefix = f"{settings.redis_key_prefix}:{FORMAT}"
        self.local = MemoryStore(
            self.max_turns, self.conversation_ttl_s, settings.enhance_cache_size, settings.enhance_cache_ttl_s
        )
        self.cache = RedisCache(
            self.client,
            self.guard,
            self.prefix,
            self.local,
            settings.enhance_cache_size,
            settings.enhance_cache_ttl_s,
        )
        self.pending = PendingTurns(settings.redis_max_pending_turns)
        self.writeback = WriteBack(self.pending, self._write, self.guard.backoff_left, WRITE_CONCURRENCY)

    @property
    def k_cache(self) -> str:
        return self.cache.k_cache

    @property
    def failure(self) -> str | None:
        return self.guard.failure

    def _keys(self, key: ConversationKey) -> list[str]:
        """The conversation's list, seen set and tombstone."""
        name = f"{quote(key[0], safe='')}:{quote(key[1], safe='')}"  # quoted: ':' in an id cannot alias
        return [f"{self.prefix}:conv:{name}", f"{self.prefix}:seen:{name}", f"{self.prefix}:gone:{name}"]

    async def _write(self, key: ConversationKey, batch: list[Turn]) -> None:
        """One APPEND of a conversation's queued turns (the write-back's writer)."""
        args = [str(self.conversation_ttl_s), str(self.max_turns), str(2 * self.max_turns + 16)]
        for turn in batch:
            args += [turn.id, repr(turn.at), json.dumps(turn.to_dict())]
        await self.guard.call(self.client.eval, scripts.APPEND, self._keys(key), args)

    # ---- conversations -------------------------------------------------------------
    async def append_turns(self, namespace: str, conversation_id: str, turns: list[Turn]) -> None:
        """Queue the turns and wake the write-back; the caller never waits on Redis here."""
        if self.max_turns <= 0 or not turns:
            return
        await self.local.append_turns(namespace, conversation_id, turns)
        self.pending.add((namespace, conversation_id), turns)
        self.writeback.kick()

    async def get_turns(self, namespace: str, conversation_id: str, limit: int) -> StoredHistory:
        """One Redis call (the READ script), merged with this worker's queued turns of the conversation."""
        limit = min(limit, self.max_turns)
        if limit <= 0:
            return StoredHistory([])
        key = (namespace, conversation_id)
        local = await self.local.get_turns(namespace, conversation_id, limit)
        keys = self._keys(key)
        try:
            gone_raw, raw = await self.guard.call(self.client.eval, scripts.READ, [keys[0], keys[2]], [str(-limit)])
            gone = float(gone_raw) if gone_raw else None
            remote = _decode_turns(raw)
        except (RedisUnavailable, *BAD_ANSWER):
            return local
        if self.pending.total:
            self.writeback.kick()  # Redis answers: anything queued goes now, not after the back-off
        queued = [t for t in self.pending.peek(key) if gone is None or t.at > gone]  # deleted ones never come back
        turns = _merge(remote, queued, limit)
        self.local.replace_turns(namespace, conversation_id, turns)  # degraded mode continues from here
        warning = None
        if len(turns) < len(local.turns):
            warning = (
                f"the shared store holds {len(local.turns) - len(turns)} fewer turns of this conversation than "
                "this worker had (Redis lost data, or the conversation was deleted); serving the shared store's"
            )
        return StoredHistory(turns, warning)

    async def delete_conversation(self, namespace: str, conversation_id: str) -> bool:
        """Delete and leave a tombstone (one script): turns from before it, queued anywhere, are never written.

        This worker's copy and queued turns go first, whatever Redis does. A delete the shared store
        did not confirm (unreachable, garbage) fails with `store_unavailable` rather than answering
        `deleted`: the shared copy is still there (an erase request must be retried, not trusted)."""
        key = (namespace, conversation_id)
        self.pending.discard(key)
        local = await self.local.delete_conversation(namespace, conversation_id)
        args = [repr(time.time()), str(self.conversation_ttl_s)]
        try:
            return bool(await self.guard.call(self.client.eval, scripts.DELETE, self._keys(key), args)) or local
        except (RedisUnavailable, *BAD_ANSWER) as exc:
            raise StoreUnavailable(
                "the shared store did not confirm the delete (this worker's copy is gone); retry shortly",
                field="conversation_id",
            ) from exc

    # ---- enhancement cache ---------------------------------------------------------
    async def cache_get(self, key: str, read: Callable[[dict[str, Any]], T | None]) -> T | None:
        return await self.cache.get(key, read)

    async def cache_put(self, key: str, value: dict[str, Any]) -> None:
        await self.cache.put(key, value)

    async def cache_clear(self) -> int:
        return await self.cache.clear()

    async def cache_stats(self) -> CacheStats:
        return await self.cache.stats()

    # ---- shutdown ------------------------------------------------------------------
    async def close(self, grace_s: float) -> int:
        """Write every queued turn within `grace_s` (retrying a failing Redis every second meanwhile);
        log what could not be written (counts only). Returns the turns left unwritten."""
        self.guard.retry_after_s = min(self.guard.retry_after_s, SHUTDOWN_RETRY_S)
        self.guard.retry_at = min(self.guard.retry_at, self.guard.clock() + SHUTDOWN_RETRY_S)
        queued, conversations = self.pending.total, len(self.pending.conversations())
        left = await self.writeback.drain(grace_s)
        if left:
            log.error(
                "shutdown: %d of %d queued turns (%d conversations) could not be written to the shared store (%s)",
                left,
                queued,
                len(self.pending.conversations()),
                self.guard.failure or "grace period over",
            )
        elif queued:
            log.info("shutdown: wrote %d queued turns of %d conversations", queued, conversations)
        return left

    # ---- health ----------------------------------------------------------------------
    @property
    def probed(self) -> bool:
        return self.guard.probed

    async def probe(self) -> None:
        with contextlib.suppress(RedisUnavailable):  # recorded by the guard and shown by health()
            await self.guard.call(self.client.ping)

    def check_at_start(self) -> None:
        try:
            asyncio.get_running_loop()
            return  # inside a loop (an embedding app): health probes on its first call instead
        except RuntimeError:
            pass

        async def ping_once() -> None:
            client = make_client(self.settings)  # its own connections: they belong to this short-lived loop
            try:
                await asyncio.wait_for(client.ping(), self.guard.timeout_s)
            finally:
                await client.close()

        try:
            asyncio.run(ping_once())
            self.guard.probed = True
        except Exception as exc:  # noqa: BLE001 - reported by health, never raised
            self.guard.failed("timeout" if isinstance(exc, TimeoutError) else failure_kind(exc))

    def health(self) -> StoreHealth:
        pending = self.pending.total
        warning = None
        if self.guard.failure:
            warning = f"shared state unavailable ({self.guard.failure}); serving from worker memory"
            if pending:
                warning += f", {pending} turns to write back"
        if self.pending.dropped:
            dropped = f"{self.pending.dropped} turns were dropped from the full write-back queue"
            warning = f"{warning}; {dropped}" if warning else dropped
        return StoreHealth(
            backend=self.backend,
            shared=True,
            ok=self.guard.failure is None,
            warning=warning,
            details={
                "pending_turns": pending,
                "pending_dropped_turns": self.pending.dropped,
                "checked": self.guard.probed,
            },
        )


def _decode_turns(raw: Any) -> list[Turn]:
    """The turns in an LRANGE answer; an item that is not a turn is skipped (never served, never fatal)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise TypeError("not a list")
    turns = []
    for item in raw:
        try:
            turns.append(Turn.from_dict(json.loads(item)))
        except BAD_ANSWER:
            continue
    return turns


def _merge(remote: list[Turn], pending: list[Turn], limit: int) -> list[Turn]:
    """Redis's turns plus those still queued here, each once, ordered by the time of the exchange."""
    seen = {t.id for t in remote}
    merged = remote + [t for t in pending if t.id not in seen]
    merged.sort(key=lambda t: t.at)  # stable: a question stays before its answer (same time)
    return whole_exchanges(merged, limit)
