"""OpenAI-compatible routes, under /v1 and (like RunPod's vLLM worker) /openai/v1: chat completions, models and
one model by id; /v1/completions (text completion) answers 404 naming /v1/chat/completions."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from handler import logs
from handler.http.body import SSE_HEADERS, read_json
from handler.http.cancel import cancel_on_disconnect
from handler.openai.serving import NOT_SERVED, OpenAIServing, not_served
from handler.status import openai_error, retry_headers


def openai_router(serving: OpenAIServing) -> APIRouter:
    router = APIRouter()

    async def models() -> dict[str, Any]:
        return serving.models()

    async def model(model_id: str) -> Response:
        try:
            return JSONResponse(serving.model(model_id))
        except Exception as exc:  # noqa: BLE001 - an unknown id is OpenAI's 404 with an error object
            return JSONResponse(openai_error(exc)[1], status_code=404)

    def refused(path: str) -> Any:
        async def route() -> Response:  # a route OpenAI has and this worker does not serve: 404 naming the one to use
            return JSONResponse(openai_error(not_served(path, "path"))[1], status_code=404)

        return route

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
        router.add_api_route(f"{prefix}/models/{{model_id:path}}", model, methods=["GET"])
        for path in NOT_SERVED:
            router.add_api_route(f"{prefix}{path.removeprefix('/v1')}", refused(path), methods=["POST"])
        router.add_api_route(f"{prefix}/chat/completions", chat_completions, methods=["POST"])
    return router
