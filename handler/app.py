"""The composition root: builds the engine, store, policy and services once, and serves jobs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from handler import dispatch as table
from handler import logs
from handler.actions import chat as chat_action
from handler.context import WorkerContext
from handler.errors import error_output
from handler.openai import jobs as openai_jobs
from handler.openai.serving import OpenAIServing
from handler.validation import check_input_size
from shared.chat import ChatService, SystemPrompts
from shared.chat.stream_guard import close_stream
from shared.engine import Engine, Message
from shared.enhance import EnhanceService, load_profiles
from shared.errors import InvalidInput
from shared.policy import ContentPolicy, ModelJudge
from shared.settings import Settings
from shared.store import MemoryStore, Store

log = logging.getLogger("handler")


def build_store(settings: Settings) -> Store:
    if settings.upstash_redis_rest_url and settings.upstash_redis_rest_token:
        from shared.store.upstash import UpstashStore

        return UpstashStore(settings)
    return MemoryStore(
        max_turns=settings.max_history_turns,
        conversation_ttl_s=settings.conversation_ttl_s,
        cache_size=settings.enhance_cache_size,
        cache_ttl_s=settings.enhance_cache_ttl_s,
    )


def build_judge(settings: Settings, engine: Engine) -> ModelJudge | None:
    """The policy's model judge (POLICY_JUDGE); the policy gets a callable, never the engine."""
    if settings.policy_judge == "off" or (settings.policy_judge == "auto" and settings.embedded_model):
        return None

    async def ask(messages: list[tuple[str, str]]) -> float:
        return await engine.judge([Message(role, content) for role, content in messages])  # type: ignore[arg-type]

    return ModelJudge.of(ask, engine.count_tokens, settings.policy_dir)


def build_engine(settings: Settings) -> Engine:
    from shared.engine.factory import build_engine as build

    return build(settings)


class Worker:
    """Holds the warm services; `handle` is the RunPod handler."""

    def __init__(self, settings: Settings, engine: Engine, store: Store | None = None) -> None:
        store = store or build_store(settings)
        store.check_at_start()  # health reports the store as checked, not as fine by default
        policy = ContentPolicy(settings.adult_content_enabled, settings.policy_dir, build_judge(settings, engine))
        chat = ChatService(engine, store, policy, settings, SystemPrompts())
        enhance = EnhanceService(engine, store, policy, settings, load_profiles(settings.profiles_file))
        self.ctx = WorkerContext(settings, engine, store, policy, chat, enhance)
        self.openai = OpenAIServing(self.ctx)

    async def shutdown(self, grace_s: float) -> int:
        """At SIGTERM, once no job runs: write the store's queued turns within `grace_s` (handler/shutdown.py),
        then unload the engine; the turns left unwritten (logged by the store). The unload is here, not
        at interpreter exit: uvicorn (HTTP mode, the local API) ends its graceful shutdown by raising
        SIGTERM again, so the process dies by the signal and atexit never runs — a vLLM engine core
        (its own process, gigabytes) would outlive the worker."""
        left = await self.ctx.store.close(grace_s)
        await asyncio.to_thread(self.ctx.engine.unload)  # off the loop: an engine core's shutdown joins processes
        return left

    async def handle(self, job: dict[str, Any]) -> dict[str, Any]:
        """The RunPod handler: one output and one log line (id, code, time, sizes; no text) per job."""
        started = time.perf_counter()
        payload = job.get("input") if isinstance(job, dict) else None
        try:
            check_input_size(self.ctx.settings, payload if isinstance(payload, dict) else {})
            output = await self._handle(job)
        except InvalidInput as exc:
            self.ctx.stats.jobs_failed += 1
            output = error_output(exc)
        logs.job_done(job, logs.action_name(payload), output, started)
        return output

    async def _handle(self, job: dict[str, Any]) -> dict[str, Any]:
        payload = job.get("input") if isinstance(job, dict) else None
        if isinstance(payload, dict) and "openai_route" in payload:  # RunPod's OpenAI passthrough: OpenAI objects
            return await openai_jobs.run(self.openai, payload)  # the serving class counts its own jobs
        try:
            output = await table.dispatch(self.ctx, job)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a clean output; the worker keeps serving
            self.ctx.stats.jobs_failed += 1
            return error_output(exc)
        self.ctx.stats.jobs_served += 1
        return output

    async def handle_stream(self, job: dict[str, Any]) -> AsyncIterator[Any]:
        """Generator handler: chat with stream=true yields deltas, an OpenAI stream its events;
        every other job yields one item. One log line per job either way."""
        payload = job.get("input") if isinstance(job, dict) else None
        force_adult = table.STREAMING_ACTIONS.get(str(payload.get("action"))) if isinstance(payload, dict) else None
        if isinstance(payload, dict) and "openai_route" in payload:
            items = openai_jobs.stream(self.openai, payload)
        elif isinstance(payload, dict) and payload.get("stream") is True and force_adult is not None:
            items = self._chat_stream(payload, force_adult)
        else:  # not a streamed chat: one item, its usual dict
            yield await self.handle(job)
            return
        async for item in logs.stream_done(job, logs.action_name(payload), items):
            yield item

    async def _chat_stream(self, payload: dict[str, Any], force_adult: bool) -> AsyncIterator[Any]:
        items = chat_action.stream(self.ctx, payload, force_adult=force_adult)
        try:
            check_input_size(self.ctx.settings, payload)
            async for item in items:
                yield item
        except Exception as exc:  # noqa: BLE001 - a failed stream (a refusal too) ends with one error item
            self.ctx.stats.jobs_failed += 1
            yield error_output(exc)
            return
        finally:  # our consumer gone: close the chain down to the engine, which stops generating
            await close_stream(items)
        self.ctx.stats.jobs_served += 1
