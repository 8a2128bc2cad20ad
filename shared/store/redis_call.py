"""The guarded Redis call: a hard timeout, any failure reduced to its kind, a back-off after a failure.

Every Redis request of the shared store goes through `Guard.call`. Credentials never reach logs
or outputs: a failure keeps only its kind (timeout, unauthorized, ConnectError, ...).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from upstash_redis.asyncio import Redis

from shared.settings import Settings

log = logging.getLogger("shared.store.upstash")
T = TypeVar("T")
BAD_ANSWER = (ValueError, TypeError, KeyError, AttributeError)  # what a garbage answer raises when decoded
Clock = Callable[[], float]


class RedisUnavailable(Exception):
    """Any Redis failure, reduced to its kind (never its message: it may carry the URL)."""


def make_client(settings: Settings) -> Redis:
    assert settings.upstash_redis_rest_url and settings.upstash_redis_rest_token
    return Redis(
        url=settings.upstash_redis_rest_url.rstrip("/"),
        token=settings.upstash_redis_rest_token.get_secret_value(),
        rest_encoding=None,
        rest_retries=0,  # our own timeout and back-off decide; the SDK's 3 s retry would not fit
        allow_telemetry=False,
    )


class Guard:
    """Runs Redis commands under the timeout; after a failure, refuses at once until the back-off ends.

    `clock` (monotonic seconds) is injectable so tests can end a back-off without waiting for it.
    """

    def __init__(self, timeout_s: float, retry_after_s: float, clock: Clock = time.monotonic) -> None:
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.clock = clock
        self.failure: str | None = None
        self.retry_at = 0.0
        self.probed = False

    def backoff_left(self) -> float:
        """Seconds until Redis may be tried again (0: now)."""
        return max(0.0, self.retry_at - self.clock()) if self.failure else 0.0

    async def call(self, command: Callable[..., Awaitable[T]], *args: Any) -> T:
        """`command(*args)` under the timeout; any failure, even one raised while building the request,
        becomes RedisUnavailable and starts the back-off."""
        if self.backoff_left() > 0:
            raise RedisUnavailable(self.failure)

        async def invoke() -> T:
            return await command(*args)

        try:
            result = await asyncio.wait_for(invoke(), self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - every failure kind degrades the same way
            self.failed("timeout" if isinstance(exc, TimeoutError) else failure_kind(exc))
            raise RedisUnavailable(self.failure) from None
        self.probed = True
        if self.failure:
            log.info("redis is back")
            self.failure = None
        return result

    def failed(self, kind: str) -> None:
        if self.failure != kind:
            log.warning("redis unavailable (%s); serving from worker memory", kind)
        self.failure, self.retry_at, self.probed = kind, self.clock() + self.retry_after_s, True


def failure_kind(exc: BaseException) -> str:
    text = str(exc).lower()
    if "unauthorized" in text or "401" in text or "invalid token" in text:
        return "unauthorized"
    if "rate" in text and "limit" in text:
        return "rate_limited"
    if isinstance(exc, (ValueError, TypeError, KeyError)):
        return "bad_response"
    return type(exc).__name__
