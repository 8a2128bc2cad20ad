"""Logging set-up and the per-job log line.

The RunPod SDK logs every handler output at DEBUG, which is its default level: replies and
whole `conversation_get` transcripts would land in the worker log. So its level is set
here (RUNPOD_LOG_LEVEL, default INFO), and DEBUG or TRACE take effect only when the operator
also sets DEBUG_LOG_CONTENT. Per job the worker logs its id, action, outcome code, time and
sizes; text never, unless DEBUG_LOG_CONTENT is on (shared/logs.py).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from handler.validation import size
from shared.logs import content_log
from shared.settings import Settings

log = logging.getLogger("handler")
_CONTENT_LEVELS = ("DEBUG", "TRACE")  # the SDK's levels that log job inputs and outputs
_SAFE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,80}")


def configure(settings: Settings, argv: list[str] | None = None) -> None:
    """Root logging, the content switch and the RunPod SDK's level (also its CLI flag)."""
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    content_log.setLevel(logging.DEBUG if settings.debug_log_content else logging.CRITICAL + 1)
    level = _allowed(settings.runpod_log_level, "RUNPOD_LOG_LEVEL", settings)
    os.environ["RUNPOD_LOG_LEVEL"] = level  # read by the SDK when it is first imported
    from runpod.serverless.modules.rp_logger import RunPodLogger

    RunPodLogger().level = level  # and if it was imported already
    _cap_cli_level(sys.argv if argv is None else argv, settings)


def _allowed(level: str, name: str, settings: Settings) -> str:
    if level.upper() in _CONTENT_LEVELS and not settings.debug_log_content:
        log.warning("%s=%s would log job outputs; using INFO (set DEBUG_LOG_CONTENT=true to allow it)", name, level)
        return "INFO"
    return level.upper()


def _cap_cli_level(argv: list[str], settings: Settings) -> None:
    """The SDK's own --rp_log_level flag obeys the same rule as RUNPOD_LOG_LEVEL."""
    for i, arg in enumerate(argv):
        if arg == "--rp_log_level" and i + 1 < len(argv):
            argv[i + 1] = _allowed(argv[i + 1], "--rp_log_level", settings)
        elif arg.startswith("--rp_log_level="):
            argv[i] = "--rp_log_level=" + _allowed(arg.split("=", 1)[1], "--rp_log_level", settings)


def action_name(payload: Any) -> str:
    """The job's action for the log: a known name only (an unknown one is caller text)."""
    from handler.dispatch import ACTIONS

    action = payload.get("action") if isinstance(payload, dict) else None
    if isinstance(payload, dict) and "openai_route" in payload:
        return "openai"
    return action if isinstance(action, str) and action in ACTIONS else "-"


def outcome(output: Any) -> str:
    """ "ok", or the error code of a failure output, an OpenAI error object or its SSE event;
    no output at all is a job its caller abandoned."""
    if output is None:
        return "cancelled"
    if isinstance(output, str) and output.startswith('data: {"error"'):
        output = json.loads(output.removeprefix("data: "))
    if isinstance(output, dict) and output.get("success") is False:
        return str(output.get("error_code"))
    if isinstance(output, dict) and isinstance(output.get("error"), dict):
        return str(output["error"].get("code"))
    return "ok"


def job_done(job: Any, action: str, output: Any, started: float) -> None:
    """One line per job: id, action, outcome code, seconds, input and output sizes (characters)."""
    _line(job, action, outcome(output), started, size(output))


async def stream_done(
    job: Any, action: str, items: AsyncIterator[Any], started: float | None = None
) -> AsyncIterator[Any]:
    """The items, passed through; then the job's one line, as `job_done` writes it, with the
    output size of every item together. A stream its consumer left early is `cancelled`."""
    started = time.perf_counter() if started is None else started
    code, out, ended = "ok", 0, False
    try:
        async for item in items:
            out += size(item)
            code = code if code != "ok" else outcome(item)
            yield item
        ended = True
    finally:
        _line(job, action, code if ended else "cancelled", started, out)
        if isinstance(items, AsyncGenerator):  # our consumer left: close the source down to the engine
            await items.aclose()


def _line(job: Any, action: str, code: str, started: float, output_size: int) -> None:
    raw_id = job.get("id") if isinstance(job, dict) else None
    job_id = raw_id if isinstance(raw_id, str) and _SAFE_ID.fullmatch(raw_id) else "-"
    log.info(
        "job %s action=%s outcome=%s %.1fms input=%d output=%d",
        job_id,
        action,
        code,
        (time.perf_counter() - started) * 1000,
        size(job.get("input") if isinstance(job, dict) else None),
        output_size,
    )
