"""The chat service: policy, system prompt, memory, context fitting, generation."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from shared.chat.history import FittedPrompt, fit_history
from shared.chat.prompts import SystemPrompts
from shared.chat.stream_guard import StreamGuard, close_stream
from shared.engine import Engine, Generation, GenerationParams, Message
from shared.errors import AdultContentDisabled, InvalidInput, check_length
from shared.policy import ContentPolicy, JudgeInput
from shared.schemas.chat import ChatRequest
from shared.settings import Settings
from shared.store import Store, Turn, conversation_namespace


@dataclass
class ChatReply:
    response: str
    generation_time: float
    conversation_id: str
    context_type: str
    message_id: str
    system_prompt_used: bool
    unrestricted_mode: bool
    usage: dict[str, int]
    finish_reason: str
    history_turns_used: int
    history_turns_dropped: int
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Prepared:
    request: ChatRequest
    conversation_id: str
    stateful: bool
    fitted: FittedPrompt
    params: GenerationParams
    context_type: str
    adult_mode: bool
    policy_texts: list[str]
    history_warning: str | None = None
    answering: bool = False  # a child-safety question: the reply is judged as its answer (policy.assess)


class ChatService:
    def __init__(
        self, engine: Engine, store: Store, policy: ContentPolicy, settings: Settings, prompts: SystemPrompts
    ) -> None:
        self.engine, self.store, self.policy = engine, store, policy
        self.settings, self.prompts = settings, prompts

    async def chat(self, request: ChatRequest, force_adult: bool = False) -> ChatReply:
        started = time.perf_counter()
        prep = await self._prepare(request, force_adult)
        result = await self.engine.generate(prep.fitted.messages, prep.params)
        return await self._finish(prep, result.text, result.completion_tokens, result.finish_reason, started)

    async def stream(self, request: ChatRequest, force_adult: bool = False) -> AsyncIterator[str | ChatReply]:
        """Yield text deltas, then the final ChatReply. Text leaves only once the output policy has
        judged the reply so far (StreamGuard); a refusal closes the engine's stream, so generation
        stops, and raises PolicyViolation: nothing more of the reply is sent."""
        started = time.perf_counter()
        prep = await self._prepare(request, force_adult)
        guard = StreamGuard(lambda pieces: self._check_output(prep, pieces, "stream"), self.policy.holdback_chars)
        chunks = self.engine.stream(prep.fitted.messages, prep.params)
        try:
            async for item in chunks:
                if isinstance(item, Generation):
                    reply = await self._finish(prep, item.text, item.completion_tokens, item.finish_reason, started)
                    if tail := guard.finish(reply.response):
                        yield tail
                    yield reply
                    return
                if delta := guard.feed(item):
                    yield delta
        finally:  # refusal, error, or our consumer gone: the engine stops generating this row
            await close_stream(chunks)

    async def _prepare(self, request: ChatRequest, force_adult: bool) -> _Prepared:
        self._check_limits(request)
        stateful = request.conversation_history is None
        conversation_id = request.conversation_id or f"conv_{uuid.uuid4().hex[:16]}"
        history, history_warning = await self._history(request, conversation_id, stateful)
        # Everything that can reach the model is checked: the caller's system prompt and every
        # turn (a minor stated 20 turns ago still counts). Adult mode comes only from the current
        # message (triggers and indicators) and the explicit flag/action, never from earlier turns.
        texts = [request.message, request.system_prompt or "", *(m.content for m in history)]
        # Off the event loop: a maximum-size history takes the policy seconds (health must stay responsive).
        found = await asyncio.to_thread(
            self.policy.enforce, texts, action="chat", trigger_text=request.message, indicator_texts=[request.message]
        )
        explicit = force_adult or request.unrestricted or found.adult_trigger
        if explicit and not self.policy.adult_enabled:
            raise AdultContentDisabled("adult content is not enabled on this worker", field="unrestricted")
        adult_mode = self.policy.adult_enabled and (explicit or found.adult_detected)
        # The judge reads the message whole and first, then the system prompt, then the newest turns.
        shown = JudgeInput(request.message, request.system_prompt or "", [m.content for m in history])
        await self.policy.confirm(shown, found, action="chat", adult_mode=adult_mode)
        system = request.system_prompt  # a caller's prompt is used verbatim, always
        if system is None:
            system = self.prompts.default_for(request.context_type, adult_mode, found.adult_detected)
        params = self._params(request)
        # Off the event loop: tokenizing a maximum-size history takes seconds (health must stay responsive).
        fitted = await asyncio.to_thread(fit_history, self.engine, system, history, request.message, params.max_tokens)
        context_type = "adult" if adult_mode and request.context_type == "general" else request.context_type
        return _Prepared(
            request,
            conversation_id,
            stateful,
            fitted,
            params,
            context_type,
            adult_mode,
            texts,
            history_warning,
            found.safety_question,
        )

    async def _finish(
        self, prep: _Prepared, text: str, completion_tokens: int, finish_reason: str, started: float
    ) -> ChatReply:
        self._check_output(prep, [text], "output")
        warnings: list[str] = [prep.history_warning] if prep.history_warning else []
        if prep.stateful:
            now = time.time()
            turns = [Turn("user", prep.request.message, now), Turn("assistant", text, now)]
            namespace = conversation_namespace(prep.request.user_id, prep.request.project_id)
            await self.store.append_turns(namespace, prep.conversation_id, turns)
            health = self.store.health()
            if health.shared and health.warning:  # shared store degraded: turns kept locally for now
                warnings.append(health.warning)
        if prep.fitted.history_dropped:
            warnings.append(f"{prep.fitted.history_dropped} oldest turns were left out to fit the context")
        return ChatReply(
            response=text,
            generation_time=round(time.perf_counter() - started, 3),
            conversation_id=prep.conversation_id,
            context_type=prep.context_type,
            message_id=f"msg_{uuid.uuid4().hex[:16]}",
            system_prompt_used=prep.request.system_prompt is not None,
            unrestricted_mode=prep.adult_mode,
            usage={"prompt_tokens": prep.fitted.prompt_tokens, "completion_tokens": completion_tokens},
            finish_reason=finish_reason,
            history_turns_used=prep.fitted.history_used,
            history_turns_dropped=prep.fitted.history_dropped,
            warnings=warnings,
        )

    def _check_output(self, prep: _Prepared, reply: list[str], stage: str) -> None:
        # The reply is judged together with what led to it: a cross-combination is refused too.
        answer_from = len(prep.policy_texts) if prep.answering else None
        self.policy.enforce([*prep.policy_texts, *reply], action="chat", stage=stage, answer_from=answer_from)

    async def _history(
        self, request: ChatRequest, conversation_id: str, stateful: bool
    ) -> tuple[list[Message], str | None]:
        """The turns the model may see, and a warning when the shared store lost some of them."""
        if not stateful:
            return [Message(item.speaker, item.content) for item in request.conversation_history or []], None
        namespace = conversation_namespace(request.user_id, request.project_id)  # never another caller's turns
        stored = await self.store.get_turns(namespace, conversation_id, self.settings.max_history_turns)
        return [Message(t.role, t.content) for t in stored.turns], stored.warning

    def _check_limits(self, request: ChatRequest) -> None:
        s = self.settings
        check_length("message", request.message, s.max_message_chars)
        if request.max_tokens is not None and request.max_tokens > s.max_tokens_limit:
            raise InvalidInput(f"max_tokens must be at most {s.max_tokens_limit}", field="max_tokens")
        check_length("system_prompt", request.system_prompt, s.max_system_prompt_chars)
        history = request.conversation_history or []
        if len(history) > max(s.max_history_turns, 1) * 4:
            raise InvalidInput("conversation_history has too many turns", field="conversation_history")
        for i, item in enumerate(history):
            check_length(f"conversation_history.{i}.content", item.content, s.max_history_item_chars)
        if sum(len(item.content) for item in history) > s.max_history_chars:
            raise InvalidInput(
                f"conversation_history holds more than {s.max_history_chars} characters", field="conversation_history"
            )

    def _params(self, request: ChatRequest) -> GenerationParams:
        s = self.settings

        def pick(value: Any, default: Any) -> Any:
            return default if value is None else value

        return GenerationParams(
            max_tokens=pick(request.max_tokens, s.default_max_tokens),
            temperature=pick(request.temperature, s.default_temperature),
            top_p=pick(request.top_p, s.default_top_p),
            top_k=pick(request.top_k, s.default_top_k),
            repetition_penalty=pick(request.repetition_penalty, s.default_repetition_penalty),
            seed=request.seed,
            stop=tuple(request.stop or ()),
        )
