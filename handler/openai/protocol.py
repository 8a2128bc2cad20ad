"""Wire schema of OpenAI's chat completions request, and how it maps onto the chat service.

The mapping (stateless: nothing is stored, every call carries its whole conversation):
- every `system`/`developer` message, in order, joined by a blank line -> `system_prompt`
  (none: the worker's default prompt for the detected context, as on `chat`);
- the last message, which must be `user` -> `message`;
- the `user`/`assistant` messages before it -> `conversation_history` (an empty list when
  none, which is what makes the chat service stateless).
Content may be a string or a list of text parts (joined); other part types are refused.
`model` is accepted whatever it names: a worker serves one model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from shared.errors import InvalidInput
from shared.schemas.common import MAX_TOKENS_MAX, SEED_MAX, TOP_K_MAX, WireModel


class TextPart(WireModel):
    type: Literal["text"]
    text: str


class ChatMessage(WireModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class StreamOptions(WireModel):
    include_usage: bool = False


class ChatCompletionRequest(WireModel):
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_MAX)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_MAX)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, le=SEED_MAX)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    # vLLM-style extras that the chat service also takes
    top_k: int | None = Field(None, ge=0, le=TOP_K_MAX)
    repetition_penalty: float | None = Field(None, ge=1.0, le=2.0)
    # accepted only at their "off" values; anything else is refused by name (see `unsupported`)
    n: int | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    logit_bias: dict[str, Any] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_format: dict[str, Any] | None = None
    audio: Any = None
    modalities: list[str] | None = None

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, stop: str | list[str] | None) -> str | list[str] | None:
        if isinstance(stop, list) and len(stop) > 4:
            raise ValueError("must hold at most 4 sequences")
        return stop

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def unsupported(req: ChatCompletionRequest) -> InvalidInput | None:
    """The first field asking for something this worker does not do, as a clear error."""
    penalty = "is not supported (use repetition_penalty)"
    text_only = (req.response_format or {}).get("type", "text") == "text"
    checks: list[tuple[str, bool, str]] = [
        ("n", req.n not in (None, 1), "only n=1 is supported"),
        ("tools", bool(req.tools), "tool calling is not supported"),
        ("tool_choice", req.tool_choice not in (None, "none"), "tool calling is not supported"),
        ("functions", bool(req.functions), "function calling is not supported"),
        ("function_call", req.function_call not in (None, "none"), "function calling is not supported"),
        ("logprobs", bool(req.logprobs), "logprobs are not supported"),
        ("top_logprobs", bool(req.top_logprobs), "logprobs are not supported"),
        ("logit_bias", bool(req.logit_bias), "logit_bias is not supported"),
        ("presence_penalty", bool(req.presence_penalty), f"presence_penalty {penalty}"),
        ("frequency_penalty", bool(req.frequency_penalty), f"frequency_penalty {penalty}"),
        ("response_format", not text_only, "only text responses are supported"),
        ("audio", req.audio is not None, "audio output is not supported"),
        ("modalities", req.modalities not in (None, ["text"]), "only the text modality is supported"),
    ]
    for name, bad, why in checks:
        if bad:
            return InvalidInput(f"'{name}': {why}", field=name)
    return None


def to_chat_payload(req: ChatCompletionRequest) -> dict[str, Any]:
    """The `chat` action's payload for this request (see the module docstring for the rules)."""
    systems = [m.text for m in req.messages if m.role in ("system", "developer")]
    turns = [(i, m) for i, m in enumerate(req.messages) if m.role in ("user", "assistant")]
    if not turns or turns[-1][1].role != "user" or turns[-1][0] != len(req.messages) - 1:
        raise InvalidInput("the last message must be a user message", field="messages")
    *earlier, (_, last) = turns
    payload: dict[str, Any] = {
        "message": last.text,
        "system_prompt": "\n\n".join(systems) if systems else None,
        "conversation_history": [{"role": m.role, "content": m.text} for _, m in earlier],
        "max_tokens": req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "top_k": req.top_k,
        "repetition_penalty": req.repetition_penalty,
        "seed": req.seed,
        "stop": [req.stop] if isinstance(req.stop, str) else req.stop,
    }
    return {k: v for k, v in payload.items() if v is not None}
