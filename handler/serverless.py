"""Starting the RunPod SDK with two handlers, picked per job.

RunPod streams only from a generator handler, and the SDK then answers every job of that
handler with the list of its items (`return_aggregate_stream`), a one-item list even for a job
that streams nothing. So a job that asks to stream (`chat`/`chat_unrestricted` with
`"stream": true`, an OpenAI job with `openai_input.stream: true`) runs through the generator
handler (`Worker.handle_stream`), and every other job through the plain one (`Worker.handle`),
whose output stays its one dict, as with streaming off. The SDK reads one `config["handler"]`;
its two job runners (the queue's JobScaler, the local API's WorkerAPI) are subclassed here to
pick the handler per job and then call the SDK's own job functions unchanged. The local API's
`/stream/{id}` always uses the generator handler (a job that streams nothing yields its one
item there). runpod==1.10.0 is pinned; tests/unit/test_serverless.py and the local-API tests
(tests/e2e/test_streaming_api.py, test_openai_queue.py) hold these subclasses to it.

A failed OpenAI job of the plain handler fails with the OpenAI error object as JSON text in the
job's `error` (RunPod's job error is a string; the SDK writes its own the same way).
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any

from runpod.serverless.modules import rp_fastapi, rp_job, rp_scale

from handler.dispatch import STREAMING_ACTIONS

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
SdkWorkerAPI = rp_fastapi.WorkerAPI  # the SDK's own classes, before start() puts the subclasses in their place


def wants_stream(payload: Any) -> bool:
    """Whether a job's input asks to stream: only these jobs get the generator handler."""
    if not isinstance(payload, dict):
        return False
    if "openai_route" in payload:
        body = payload.get("openai_input")
        return isinstance(body, dict) and body.get("stream") is True
    return payload.get("stream") is True and payload.get("action") in STREAMING_ACTIONS


def plain_handler(handle: Handler) -> Handler:
    """The plain handler as the SDK gets it: an OpenAI error object becomes the job's error string."""

    async def run(job: dict[str, Any]) -> dict[str, Any]:
        output = await handle(job)
        if isinstance(output.get("error"), dict):
            return {"error": json.dumps(output, ensure_ascii=False)}
        return output

    return run


def config(handle: Handler, handle_stream: Callable[..., Any], concurrency: int, stream: bool) -> dict[str, Any]:
    """The SDK's config: the plain handler in `handler` (what `--test_input` runs); with `stream`,
    the generator handler beside it for the jobs that ask to stream."""
    cfg: dict[str, Any] = {
        "handler": plain_handler(handle),
        "concurrency_modifier": lambda _current: concurrency,
        "return_aggregate_stream": True,
    }
    if stream:
        cfg["stream_handler"] = handle_stream
    return cfg


def for_job(cfg: dict[str, Any], payload: Any) -> dict[str, Any]:
    """The config whose handler serves a job with this input."""
    if "stream_handler" in cfg and wants_stream(payload):
        return {**cfg, "handler": cfg["stream_handler"]}
    return cfg


class JobScaler(rp_scale.JobScaler):
    """RunPod's job loop, handing each job to the handler it needs."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__(cfg)
        self.jobs_handler = self.per_job

    async def per_job(self, session: Any, cfg: dict[str, Any], job: dict[str, Any]) -> None:
        await rp_job.handle_job(session, for_job(cfg, job.get("input")), job)


def _view(cfg: dict[str, Any]) -> Any:
    view = SdkWorkerAPI.__new__(SdkWorkerAPI)  # the SDK's methods read only .config
    view.config = cfg
    return view


class WorkerAPI(rp_fastapi.WorkerAPI):
    """The SDK's local test API (--rp_serve_api), handing each job to the handler it needs."""

    async def _sim_runsync(self, job_request: rp_fastapi.DefaultRequest) -> Any:
        return await SdkWorkerAPI._sim_runsync(_view(for_job(self.config, job_request.input)), job_request)

    async def _sim_status(self, job_id: str) -> Any:
        stashed = rp_fastapi.job_list.get(job_id)
        cfg = for_job(self.config, stashed.input if stashed is not None else None)
        return await SdkWorkerAPI._sim_status(_view(cfg), job_id)

    async def _sim_stream(self, job_id: str) -> Any:
        cfg = self.config
        cfg = {**cfg, "handler": cfg["stream_handler"]} if "stream_handler" in cfg else cfg
        return await SdkWorkerAPI._sim_stream(_view(cfg), job_id)


def start(handle: Handler, handle_stream: Callable[..., Any], concurrency: int, stream: bool) -> None:
    """runpod.serverless.start with per-job handlers (stream=False: the plain handler only)."""
    import runpod

    if stream:
        rp_scale.JobScaler = JobScaler  # read by the SDK's worker loop when it starts
        rp_fastapi.WorkerAPI = WorkerAPI  # read by runpod.serverless.start for --rp_serve_api
    runpod.serverless.start(config(handle, handle_stream, concurrency, stream))
