"""Shared state on Upstash Redis (REST), so that every worker sees the same cache and conversations.

Keys (prefix from REDIS_KEY_PREFIX, then the layout version; docs/STATE.md has the table):
  {p}:v2:conv:{namespace}:{id}   list of JSON turns, written by the APPEND script
  {p}:v2:seen:{namespace}:{id}   sorted set of the turn ids written (so a re-sent turn is skipped)
  {p}:v2:cache:{key}             JSON body with TTL; {p}:v2:cache-index, {p}:v2:stats:{hits|misses}

When Redis misbehaves (unreachable, slow, 401, rate-limited, garbage) jobs still succeed:
reads fall back to this worker's memory, conversation turns are queued and written back
(once, in order) when Redis answers again, and `health()` carries a warning. Every call
has a hard timeout; after a failure Redis is left alone for a short back-off so jobs do
not each pay the timeout. Credentials never reach logs or outputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote

from upstash_redis.asyncio import Redis

from shared.settings import Settings
from shared.store import scripts
from shared.store.base import CacheStats, Store, StoredHistory, StoreHealth, Turn, whole_exchanges
from shared.store.memory import MemoryStore
from shared.store.pending import ConversationKey, PendingTurns

log = logging.getLogger(__name__)
T = TypeVar("T")
FORMAT = "v2"  # v1 keyed conversations by id alone; its keys are never read and expire by their TTL
FLUSH_OTHERS_PER_JOB = 16
_BAD_ANSWER = (ValueError, TypeError, KeyError, AttributeError)  # what a garbage answer raises when decoded


class RedisUnavailable(Exception):
    """Any Redis failure, reduced to its kind (never its message: it may carry the URL)."""


def _client(settings: Settings) -> Redis:
    assert settings.upstash_redis_rest_url and settings.upstash_redis_rest_token
    return Redis(
        url=settings.upstash_redis_rest_url.rstrip("/"),
        token=settings.upstash_redis_rest_token.get_secret_value(),
        rest_encoding=None,
        rest_retries=0,  # our own timeout and back-off decide; the SDK's 3 s retry would not fit
        allow_telemetry=False,
    )


class UpstashStore(Store):
    backend = "upstash"

    def __init__(self, settings: Settings, client: Any = None) -> None:
        self.settings = settings
        self.client = client or _client(settings)
        self.timeout_s = settings.redis_timeout_s
        self.retry_after_s = settings.redis_retry_after_s
        self.max_turns = settings.max_history_turns
        self.conversation_ttl_s = settings.conversation_ttl_s
        self.cache_size = settings.enhance_cache_size
        self.cache_ttl_s = settings.enhance_cache_ttl_s
        p = f"{settings.redis_key_prefix}:{FORMAT}"
        self.prefix = p
        self.k_cache, self.k_index = f"{p}:cache:", f"{p}:cache-index"
        self.k_hits, self.k_misses = f"{p}:stats:hits", f"{p}:stats:misses"
        self.local = MemoryStore(self.max_turns, self.conversation_ttl_s, self.cache_size, self.cache_ttl_s)
        self.pending = PendingTurns(settings.redis_max_pending_turns)
        self.flushing: set[ConversationKey] = set()  # one write-back at a time per conversation
        self.failure: str | None = None
        self.retry_at = 0.0
        self._probed = False

    # ---- the guarded call --------------------------------------------------------
    async def _call(self, command: Callable[..., Awaitable[T]], *args: Any) -> T:
        """`command(*args)` under the timeout; any failure, even one raised while building the request,
        becomes RedisUnavailable and starts the back-off."""
        if self.failure and time.monotonic() < self.retry_at:
            raise RedisUnavailable(self.failure)

        async def invoke() -> T:
            return await command(*args)

        try:
            result = await asyncio.wait_for(invoke(), self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - every failure kind degrades the same way
            self._failed("timeout" if isinstance(exc, TimeoutError) else _kind(exc))
            raise RedisUnavailable(self.failure) from None
        self._probed = True
        if self.failure:
            log.info("redis is back")
            self.failure = None
        return result

    def _failed(self, kind: str) -> None:
        if self.failure != kind:
            log.warning("redis unavailable (%s); serving from worker memory", kind)
        self.failure, self.retry_at, self._probed = kind, time.monotonic() + self.retry_after_s, True

    # ---- write-back --------------------------------------------------------------
    def _keys(self, key: ConversationKey) -> list[str]:
        name = f"{quote(key[0], safe='')}:{quote(key[1], safe='')}"  # quoted: ':' in an id cannot alias
        return [f"{self.prefix}:conv:{name}", f"{self.prefix}:seen:{name}"]

    async def _flush(self, key: ConversationKey) -> None:
        """Write this conversation's queued turns; a flush already in flight takes new turns too."""
        if key in self.flushing:
            return
        self.flushing.add(key)
        try:
            while batch := self.pending.peek(key):
                args = [str(self.conversation_ttl_s), str(self.max_turns), str(2 * self.max_turns + 16)]
                for turn in batch:
                    args += [turn.id, repr(turn.at), json.dumps(turn.to_dict())]
                await self._call(self.client.eval, scripts.APPEND, self._keys(key), args)
                self.pending.remove(key, batch)
        except RedisUnavailable:
            pass  # kept for the next flush; the caller's answer carries the store's warning
        finally:
            self.flushing.discard(key)

    async def _flush_all(self, first: ConversationKey | None = None) -> None:
        """The job's own conversation, then a few others: after a long outage the backlog is spread
        over the next jobs instead of landing on one."""
        others = [k for k in self.pending.conversations() if k != first][:FLUSH_OTHERS_PER_JOB]
        for key in ([first] if first else []) + others:
            if self.failure and time.monotonic() < self.retry_at:
                return
            await self._flush(key)

    # ---- conversations -------------------------------------------------------------
    async def append_turns(self, namespace: str, conversation_id: str, turns: list[Turn]) -> None:
        if self.max_turns <= 0 or not turns:
            return
        key = (namespace, conversation_id)
        await self.local.append_turns(namespace, conversation_id, turns)
        self.pending.add(key, turns)
        await self._flush_all(first=key)

    async def get_turns(self, namespace: str, conversation_id: str, limit: int) -> StoredHistory:
        limit = min(limit, self.max_turns)
        if limit <= 0:
            return StoredHistory([])
        key = (namespace, conversation_id)
        local = await self.local.get_turns(namespace, conversation_id, limit)
        try:
            await self._flush_all(first=key)
            raw = await self._call(self.client.lrange, self._keys(key)[0], -limit, -1)
            remote = _decode_turns(raw)
        except (RedisUnavailable, *_BAD_ANSWER):
            return local
        turns = _merge(remote, self.pending.peek(key), limit)
        self.local.replace_turns(namespace, conversation_id, turns)  # degraded mode continues from here
        warning = None
        if len(turns) < len(local.turns):
            warning = (
                f"the shared store holds {len(local.turns) - len(turns)} fewer turns of this conversation than "
                "this worker had (Redis lost data, or the conversation was deleted); serving the shared store's"
            )
        return StoredHistory(turns, warning)

    async def delete_conversation(self, namespace: str, conversation_id: str) -> bool:
        key = (namespace, conversation_id)
        self.pending.discard(key)
        local = await self.local.delete_conversation(namespace, conversation_id)
        try:
            return bool(await self._call(self.client.delete, *self._keys(key))) or local
        except (RedisUnavailable, *_BAD_ANSWER):
            return local

    # ---- enhancement cache ---------------------------------------------------------
    async def cache_get(self, key: str, read: Callable[[dict[str, Any]], T | None]) -> T | None:
        keys = [self.k_cache + key, self.k_index, self.k_hits, self.k_misses]
        try:
            raw = await self._call(self.client.eval, scripts.CACHE_GET, keys, [str(time.time())])
            value = json.loads(raw) if raw is not None else None
        except (RedisUnavailable, *_BAD_ANSWER):
            return await self.local.cache_get(key, read)
        found = read(value) if isinstance(value, dict) else None
        if found is None and raw is not None:  # the script counted a hit for a body nobody can use
            with contextlib.suppress(RedisUnavailable, *_BAD_ANSWER):  # down now: off by one until it is back
                await self._call(self.client.eval, scripts.CACHE_UNREADABLE, [self.k_hits, self.k_misses], [])
        return found

    async def cache_put(self, key: str, value: dict[str, Any]) -> None:
        if self.cache_size <= 0:
            return
        args = [json.dumps(value), str(int(self.cache_ttl_s)), str(time.time()), str(self.cache_size)]
        try:
            await self._call(self.client.eval, scripts.CACHE_PUT, [self.k_cache + key, self.k_index], args)
        except (RedisUnavailable, *_BAD_ANSWER):
            await self.local.cache_put(key, value)

    async def cache_clear(self) -> int:
        local = await self.local.cache_clear()
        try:
            return int(await self._call(self.client.eval, scripts.CACHE_CLEAR, [self.k_index], []))
        except (RedisUnavailable, *_BAD_ANSWER):
            return local

    async def cache_stats(self) -> CacheStats:
        async def counts() -> Any:
            tx = self.client.pipeline()
            tx.zcard(self.k_index)
            tx.get(self.k_hits)
            tx.get(self.k_misses)
            return await tx.exec()

        try:
            size, hits, misses = await self._call(counts)
            return CacheStats(int(size or 0), int(hits or 0), int(misses or 0))
        except (RedisUnavailable, *_BAD_ANSWER):
            return await self.local.cache_stats()

    # ---- health ----------------------------------------------------------------------
    @property
    def probed(self) -> bool:
        return self._probed

    async def probe(self) -> None:
        with contextlib.suppress(RedisUnavailable):  # a failure is recorded by _call and shown by health()
            await self._call(self.client.ping)

    def check_at_start(self) -> None:
        try:
            asyncio.get_running_loop()
            return  # inside a loop (an embedding app): health probes on its first call instead
        except RuntimeError:
            pass

        async def ping_once() -> None:
            client = _client(self.settings)  # its own connections: they belong to this short-lived loop
            try:
                await asyncio.wait_for(client.ping(), self.timeout_s)
            finally:
                await client.close()

        try:
            asyncio.run(ping_once())
            self._probed = True
        except Exception as exc:  # noqa: BLE001 - reported by health, never raised
            self._failed("timeout" if isinstance(exc, TimeoutError) else _kind(exc))

    def health(self) -> StoreHealth:
        pending = self.pending.total
        warning = None
        if self.failure:
            warning = f"shared state unavailable ({self.failure}); serving from worker memory"
            if pending:
                warning += f", {pending} turns to write back"
        if self.pending.dropped:
            dropped = f"{self.pending.dropped} turns were dropped from the full write-back queue"
            warning = f"{warning}; {dropped}" if warning else dropped
        return StoreHealth(
            backend=self.backend,
            shared=True,
            ok=self.failure is None,
            warning=warning,
            details={
                "pending_turns": pending,
                "pending_dropped_turns": self.pending.dropped,
                "checked": self._probed,
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
        except _BAD_ANSWER:
            continue
    return turns


def _merge(remote: list[Turn], pending: list[Turn], limit: int) -> list[Turn]:
    """Redis's turns plus those still queued here, each once, ordered by the time of the exchange."""
    seen = {t.id for t in remote}
    merged = remote + [t for t in pending if t.id not in seen]
    merged.sort(key=lambda t: t.at)  # stable: a question stays before its answer (same time)
    return whole_exchanges(merged, limit)


def _kind(exc: BaseException) -> str:
    text = str(exc).lower()
    if "unauthorized" in text or "401" in text or "invalid token" in text:
        return "unauthorized"
    if "rate" in text and "limit" in text:
        return "rate_limited"
    if isinstance(exc, (ValueError, TypeError, KeyError)):
        return "bad_response"
    return type(exc).__name__
