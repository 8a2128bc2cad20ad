"""The action table. Aliases keep the seed's HTTP route names callable one-to-one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from handler.actions import admin, chat, enhance, warmup
from handler.context import WorkerContext
from handler.errors import echo
from shared.errors import InvalidInput, UnknownAction
from shared.schemas.common import lone_surrogate

Action = Callable[[WorkerContext, dict[str, Any]], Awaitable[dict[str, Any]]]


def _admin_alias(command: str) -> Action:
    async def run(ctx: WorkerContext, payload: dict[str, Any]) -> dict[str, Any]:
        return await admin.run(ctx, {**payload, "command": command})

    return run


ACTIONS: dict[str, Action] = {
    "chat": chat.run,  # /chat
    "chat_unrestricted": chat.run_unrestricted,  # /chat/unrestricted
    "enhance": enhance.run,  # /enhance
    "enhance_intelligent": partial(enhance.run, mode="intelligent"),  # /enhance/intelligent
    "enhance_legacy": partial(enhance.run, mode="legacy"),  # /enhance/legacy
    "admin": admin.run,
    "warmup": warmup.run,
    # the seed's GET routes, as admin commands
    "health": _admin_alias("health"),  # /health
    "model_info": _admin_alias("model_info"),  # /model/info
    "memory_status": _admin_alias("memory_status"),  # /memory/status
    "enhancement_info": _admin_alias("enhancement_info"),  # /enhancement/info
    "cache_clear": _admin_alias("cache_clear"),  # /enhancement/cache/clear
}

STREAMING_ACTIONS = {"chat": False, "chat_unrestricted": True}  # value: force adult mode


def split_job(job: Any) -> tuple[str, dict[str, Any]]:
    """The action name and its payload, or InvalidInput naming what is wrong."""
    payload = job.get("input") if isinstance(job, dict) else None
    if not isinstance(payload, dict):
        raise InvalidInput("'input' must be an object with an 'action' field", field="input")
    action = payload.get("action")
    if action is None:
        raise InvalidInput("'action' is required", field="action")
    if not isinstance(action, str) or not action.strip():
        raise InvalidInput("'action' must be a non-empty string", field="action")
    if lone_surrogate(action) is not None:  # checked like every other caller string: never echoed as sent
        raise InvalidInput("'action' is not well-formed Unicode (a lone surrogate)", field="action")
    if action not in ACTIONS:
        raise UnknownAction(f"unknown action {echo(action)}; valid: {', '.join(sorted(ACTIONS))}", field="action")
    return action, payload


async def dispatch(ctx: WorkerContext, job: Any) -> dict[str, Any]:
    action, payload = split_job(job)
    return await ACTIONS[action](ctx, payload)
