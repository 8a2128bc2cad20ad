"""OpenAI-compatible routes, under /v1 and (like RunPod's vLLM worker) /openai/v1."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from handler.http.body import SSE_HEADERS, read_json
from handler.http.cancel import cancel_on_disconnect
from handler.openai.serving import OpenAIServing
from handler.status import openai_error, retry_headers


def error_response(exc: BaseException) -> JSONResponse:
    status, body = openai_error(exc)
    return JSONResponse(body, status_code=status, headers=retry_headers(status))


def openai_router(serving: OpenAIServing) -> APIRouter:
    router = APIRouter()

    async def models() -> dict[str, Any]:
        return serving.models()

    async def chat_completions(request: Request) -> Response:
        try:
            req = serving.parse(await read_json(request))
            if req.stream:
                # Headers go out with the first released text; refusals before it are plain errors.
                events = await cancel_on_disconnect(request, serving.open_stream(req))
                if events is None:
                    return Response(status_code=499)
                return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
            completion = await cancel_on_disconnect(request, serving.complete(req))
        except Exception as exc:  # noqa: BLE001 - every failure is an OpenAI error object
            return error_response(exc)
        return JSONResponse(completion) if completion is not None else Response(status_code=499)

    for prefix in ("/v1", "/openai/v1"):
        router.add_api_route(f"{prefix}/models", models, methods=["GET"])
        router.add_api_route(f"{prefix}/chat/completions", chat_completions, methods=["POST"])
    return router
