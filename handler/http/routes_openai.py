"""OpenAI-compatible routes, under /v1 and (like RunPod's vLLM worker) /openai/v1."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from handler import logs
from handler.http.body import SSE_HEADERS, read_json
from handler.http.cancel import cancel_on_disconnect
from handler.openai.serving import OpenAIServing
from handler.status import openai_error, retry_headers


def openai_router(serving: OpenAIServing) -> APIRouter:
    router = APIRouter()

    async def models() -> dict[str, Any]:
        return serving.models()

    async def chat_completions(request: Request) -> Response:
        # Not a Worker.handle job, so the per-job log line is written here (action "openai").
        job: dict[str, Any] = {"id": f"http-{uuid.uuid4().hex[:12]}", "input": None}
        started = time.perf_counter()
        try:
            job["input"] = await read_json(request)
            req = serving.parse(job["input"])
            if req.stream:
                # Headers go out with the first released text; refusals before it are plain errors.
                events = await cancel_on_disconnect(request, serving.open_stream(req))
                if events is not None:
                    logged = logs.stream_done(job, "openai", events, started)
                    return StreamingResponse(logged, media_type="text/event-stream", headers=SSE_HEADERS)
                completion = None
            else:
                completion = await cancel_on_disconnect(request, serving.complete(req))
        except Exception as exc:  # noqa: BLE001 - every failure is an OpenAI error object
            status, body = openai_error(exc)
            logs.job_done(job, "openai", body, started)
            return JSONResponse(body, status_code=status, headers=retry_headers(status))
        logs.job_done(job, "openai", completion, started)
        return JSONResponse(completion) if completion is not None else Response(status_code=499)

    for prefix in ("/v1", "/openai/v1"):
        router.add_api_route(f"{prefix}/models", models, methods=["GET"])
        router.add_api_route(f"{prefix}/chat/completions", chat_completions, methods=["POST"])
    return router
