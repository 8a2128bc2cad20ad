"""OpenAI chat completions over the chat service: the only place their wire objects are built.

Used by HTTP mode's /v1 routes and by queue jobs that carry `openai_route` (RunPod's
OpenAI passthrough). The content policy is the chat service's own, input and output;
streams come from `ChatService.stream`, which holds back text the policy may still refuse.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import ValidationError

from handler.context import WorkerContext
from handler.errors import echo, validation_to_invalid
from handler.openai.protocol import ChatCompletionRequest, to_chat_payload, unsupported
from handler.sse import DONE, sse
from handler.status import openai_error
from handler.validation import check_input_size, parse
from shared.chat import ChatReply
from shared.errors import InvalidInput, UnknownAction, WorkerError
from shared.schemas.chat import ChatRequest

# Where a chat-service field came from in the OpenAI request: (the `param` errors name, the
# words their text uses), so the answer's param and its message name the same field.
_FIELDS = {
    "message": ("messages[-1].content", "messages[-1].content"),
    "system_prompt": ("messages", "the system and developer text in messages"),
    "conversation_history": ("messages", "an earlier turn in messages"),
}
# OpenAI routes this chat worker does not serve, and the route to use instead.
NOT_SERVED = {"/v1/completions": "/v1/chat/completions"}


def not_served(path: str, field: str) -> UnknownAction:
    """The error for a route in NOT_SERVED (HTTP answers it with 404)."""
    return UnknownAction(
        f"'{path}' (text completion) is not served by this chat worker; send the prompt as a user message to "
        f"{NOT_SERVED[path]}",
        field=field,
    )


_PATH = re.compile(r"'?\b(" + "|".join(_FIELDS) + r")((?:\.\w+|\[\d+\])*)\b'?")


class OpenAIServing:
    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.created = int(time.time())
        self._model_name: str | None = ctx.settings.served_model_name

    @property
    def model_name(self) -> str:
        if self._model_name is None:  # "SmolLM2-135M-Instruct (embedded, Q4_1 GGUF)" -> its first word
            self._model_name = self.ctx.engine.info().model_name.split(" ")[0]
        return self._model_name

    def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [self._card()]}

    def model(self, model_id: str) -> dict[str, Any]:
        """`/v1/models/{id}`: the card when `id` is the served name; InvalidInput naming `model` otherwise."""
        if model_id != self.model_name:
            raise InvalidInput(
                f"the model {echo(model_id)} does not exist; this worker serves '{self.model_name}'", field="model"
            )
        return self._card()

    def _card(self) -> dict[str, Any]:
        return {"id": self.model_name, "object": "model", "created": self.created, "owned_by": "chat-worker"}

    # ---- requests ----------------------------------------------------------------
    def parse(self, body: Any) -> ChatCompletionRequest:
        with self._counted(failures_only=True):
            return self._parse(body)

    def _parse(self, body: Any) -> ChatCompletionRequest:
        if not isinstance(body, dict):
            raise InvalidInput("the request body must be a JSON object", field="body")
        check_input_size(self.ctx.settings, body)  # MAX_INPUT_CHARS, as for every queue job
        try:
            req = ChatCompletionRequest.model_validate(body)
        except ValidationError as exc:
            raise validation_to_invalid(exc) from None
        problem = unsupported(req)
        if problem is not None:
            raise problem
        return req

    def _chat_request(self, req: ChatCompletionRequest) -> ChatRequest:
        return parse(ChatRequest, to_chat_payload(req))

    async def complete(self, req: ChatCompletionRequest) -> dict[str, Any]:
        """A `chat.completion` object."""
        with self._counted(), _openai_fields():
            reply = await self.ctx.chat.chat(self._chat_request(req))
        usage = _usage(reply)
        message = {"role": "assistant", "content": reply.response}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}
        return {**self._head(reply.message_id, "chat.completion"), "choices": [choice], "usage": usage}

    async def open_stream(self, req: ChatCompletionRequest) -> AsyncIterator[str]:
        """Server-sent events; input refusals and bad input raise here, before any byte is sent."""
        with self._counted(failures_only=True), _openai_fields():
            source = self.ctx.chat.stream(self._chat_request(req))
            first = await anext(source)
        return self._events(req, first, source)

    async def _events(
        self, req: ChatCompletionRequest, first: str | ChatReply, source: AsyncIterator[str | ChatReply]
    ) -> AsyncIterator[str]:
        head = self._head(f"chatcmpl-{uuid.uuid4().hex[:24]}", "chat.completion.chunk")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            return sse({**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})

        yield chunk({"role": "assistant", "content": ""})
        item = first
        try:
            while not isinstance(item, ChatReply):
                if item:
                    yield chunk({"content": item})
                item = await anext(source)
        except Exception as exc:  # noqa: BLE001 - a stream that fails mid-way ends with an error event
            self.ctx.stats.jobs_failed += 1
            yield sse(openai_error(exc)[1])
            yield DONE
            return
        finally:
            await source.aclose()  # type: ignore[attr-defined]
        self.ctx.stats.jobs_served += 1
        yield chunk({}, item.finish_reason)
        if req.include_usage:
            yield sse({**head, "choices": [], "usage": _usage(item)})
        yield DONE

    @contextmanager
    def _counted(self, failures_only: bool = False) -> Iterator[None]:
        try:
            yield
        except Exception:
            self.ctx.stats.jobs_failed += 1
            raise
        if not failures_only:
            self.ctx.stats.jobs_served += 1

    def _head(self, ident: str, kind: str) -> dict[str, Any]:
        ident = ident if ident.startswith("chatcmpl-") else f"chatcmpl-{ident.removeprefix('msg_')}"
        return {"id": ident, "object": kind, "created": int(time.time()), "model": self.model_name}


@contextmanager
def _openai_fields() -> Iterator[None]:
    """Errors name the OpenAI request's field, not the chat service's."""
    try:
        yield
    except WorkerError as exc:
        root = _PATH.fullmatch(exc.field or "")
        if root is not None:
            exc.field = _FIELDS[root.group(1)][0]
            exc.message = _PATH.sub(lambda m: _FIELDS[m.group(1)][1], exc.message)
            exc.args = (exc.message,)
        raise


def _usage(reply: ChatReply) -> dict[str, int]:
    prompt, completion = reply.usage["prompt_tokens"], reply.usage["completion_tokens"]
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
