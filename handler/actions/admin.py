"""Action `admin` with `command`; the seed's GET routes are aliases of its commands."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from handler.context import WorkerContext
from handler.errors import echo
from handler.validation import admin_token_valid, parse, require_admin
from shared.errors import UnknownCommand
from shared.schemas.common import Identifier, NonBlank, WireModel
from shared.store import conversation_namespace

VERSION = "0.1.0"

Command = Callable[[WorkerContext, dict[str, Any]], Awaitable[dict[str, Any]]]


class AdminRequest(WireModel):
    command: NonBlank


async def health(ctx: WorkerContext, payload: dict[str, Any]) -> dict[str, Any]:
    if not ctx.store.probed:  # normally probed at start-up; never report an unchecked store as fine
        await ctx.store.probe()
    store = ctx.store.health()
    loaded = ctx.engine.loaded
    problem = ctx.engine.problem  # e.g. the model thread stopped; the next job restarts it
    warnings = [w for w in (store.warning, problem) if w]
    return {
        "success": True,
        "status": "ok" if loaded and store.ok and not problem else ("degraded" if loaded else "loading"),
        "live": True,
        "ready": loaded and not problem,  # readiness (model loaded, serving) is separate from liveness
        "model_loaded": loaded,
        "warm": loaded and ctx.stats.warmed_up,
        "uptime_s": round(time.time() - ctx.stats.started_at, 1),
        "jobs_served": ctx.stats.jobs_served,
        "jobs_failed": ctx.stats.jobs_failed,
        "adult_content_enabled": ctx.policy.adult_enabled,
        "policy_judge": asdict(ctx.policy.judge_stats()),  # unavailable answers; refusals because of them
        "state_shared": store.shared,
        "store": {"backend": store.backend, "shared": store.shared, "ok": store.ok, **store.details},
        "warnings": warnings,
        "version": VERSION,
    }


async def model_info(ctx: WorkerContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Without the admin token the model is named, not located: its file path is a host detail."""
    info = asdict(ctx.engine.info())
    extra = info.pop("extra")
    if not admin_token_valid(ctx.settings, payload):
        info["model_path"] = info["model_name"]
    return {"success": True, **info, "load": extra}


async def memory_status(ctx: WorkerContext, payload: dict[str, Any]) -> dict[str, Any]:
    return {"success": True, **ctx.engine.memory()}


async def enhancement_info(ctx: WorkerContext, payload: dict[str, Any]) -> dict[str, Any]:
    """The seed's field names for the service's EnhanceStatus (golden: tests/unit/test_enhance_info.py)."""
    status = await ctx.enhance.info()
    adult = status.adult_enabled
    return {
        "success": True,
        "enhancement_system": "active",
        "supported_job_types": sorted(j.name for j in status.job_types),
        "job_types": {
            j.name: {
                "family": j.family,
                "tokenizer": j.tokenizer,
                "token_limit": j.token_limit,
                "token_target": list(j.token_target),
                "style": j.style,
                "version": j.version,
            }
            for j in status.job_types
        },
        "cache_size": status.cache_size,
        "cache_hits": status.cache_hits,
        "cache_misses": status.cache_misses,
        "cache_shared": status.cache_shared,
        "model_status": "loaded" if status.model_loaded else "not_loaded",
        "nsfw_optimization": "enabled" if adult else "disabled",
        "policy": {"adult_content_enabled": adult, "minor_safety": "always_on"},
    }


async def cache_clear(ctx: WorkerContext, payload: dict[str, Any]) -> dict[str, Any]:
    require_admin(ctx.settings, payload)
    cleared = await ctx.store.cache_clear()
    stats = await ctx.store.cache_stats()
    return {"success": True, "cache_cleared": cleared, "cache_size": stats.size}


class ConversationRef(WireModel):
    """A conversation is named by its id within the namespace chat used: user_id, else project_id, else none."""

    conversation_id: Identifier
    user_id: Identifier | None = None
    project_id: Identifier | None = None

    @property
    def namespace(self) -> str:
        return conversation_namespace(self.user_id, self.project_id)


async def conversation_get(ctx: WorkerContext, payload: dict[str, Any]) -> dict[str, Any]:
    require_admin(ctx.settings, payload)
    ref = parse(ConversationRef, payload)
    stored = await ctx.store.get_turns(ref.namespace, ref.conversation_id, ctx.settings.max_history_turns)
    out = {
        "success": True,
        "conversation_id": ref.conversation_id,
        "namespace": ref.namespace,
        "turns": [t.to_dict() for t in stored.turns],
    }
    return {**out, "warning": stored.warning} if stored.warning else out


async def conversation_delete(ctx: WorkerContext, payload: dict[str, Any]) -> dict[str, Any]:
    require_admin(ctx.settings, payload)
    ref = parse(ConversationRef, payload)
    deleted = await ctx.store.delete_conversation(ref.namespace, ref.conversation_id)
    return {"success": True, "conversation_id": ref.conversation_id, "namespace": ref.namespace, "deleted": deleted}


async def unload(ctx: WorkerContext, payload: dict[str, Any]) -> dict[str, Any]:
    require_admin(ctx.settings, payload)
    await asyncio.to_thread(ctx.engine.unload)  # it waits for the model thread: never on the event loop
    ctx.stats.warmed_up = False
    return {"success": True, "model_loaded": ctx.engine.loaded}


COMMANDS: dict[str, Command] = {
    "health": health,
    "model_info": model_info,
    "memory_status": memory_status,
    "enhancement_info": enhancement_info,
    "cache_clear": cache_clear,
    "conversation_get": conversation_get,
    "conversation_delete": conversation_delete,
    "unload": unload,
}


async def run(ctx: WorkerContext, payload: dict[str, Any]) -> dict[str, Any]:
    command = parse(AdminRequest, payload).command
    handler = COMMANDS.get(command)
    if handler is None:
        valid = ", ".join(sorted(COMMANDS))
        raise UnknownCommand(f"unknown admin command {echo(command)}; valid: {valid}", field="command")
    return await handler(ctx, payload)
