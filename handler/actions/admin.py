"""Action `admin` with `command`; the seed's GET routes are aliases of its commands."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from handler.context import WorkerContext
from handler.validation import admin_token_valid, parse, require_admin
from shared.errors import InvalidInput, UnknownCommand
from shared.schemas.common import NonBlank, WireModel

VERSION = "0.1.0"

Command = Callable[[WorkerContext, dict[str, Any]], Awaitable[dict[str, Any]]]


class AdminRequest(WireModel):
    command: NonBlank


async def health(ctx: WorkerContext, payload: dict[str, Any]) -> dict[str, Any]:
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
    return {"success": True, **(await ctx.enhance.info())}


async def cache_clear(ctx: WorkerContext, payload: dict[str, Any]) -> dict[str, Any]:
    require_admin(ctx.settings, payload)
    cleared = await ctx.store.cache_clear()
    stats = await ctx.store.cache_stats()
    return {"success": True, "cache_cleared": cleared, "cache_size": stats.size}


def _conversation_id(payload: dict[str, Any]) -> str:
    cid = payload.get("conversation_id")
    if not isinstance(cid, str) or not cid.strip():
        raise InvalidInput("'conversation_id' is required", field="conversation_id")
    return cid


async def conversation_get(ctx: WorkerContext, payload: dict[str, Any]) -> dict[str, Any]:
    require_admin(ctx.settings, payload)
    cid = _conversation_id(payload)
    turns = await ctx.store.get_turns(cid, ctx.settings.max_history_turns)
    return {"success": True, "conversation_id": cid, "turns": [t.to_dict() for t in turns]}


async def conversation_delete(ctx: WorkerContext, payload: dict[str, Any]) -> dict[str, Any]:
    require_admin(ctx.settings, payload)
    cid = _conversation_id(payload)
    return {"success": True, "conversation_id": cid, "deleted": await ctx.store.delete_conversation(cid)}


async def unload(ctx: WorkerContext, payload: dict[str, Any]) -> dict[str, Any]:
    require_admin(ctx.settings, payload)
    ctx.engine.unload()
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
        raise UnknownCommand(f"unknown admin command '{command}'; valid: {valid}", field="command")
    return await handler(ctx, payload)
