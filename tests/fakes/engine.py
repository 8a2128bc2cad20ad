"""A scriptable engine for fast unit tests (after simonw/llm's mock model).

`enqueue` replies (text, an exception to raise, or a callable of the messages); `history`
records every call. Tokens are counted as whitespace-separated words, which is all a
unit test needs; the real tokenizer is exercised by the end-to-end tests.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from shared.engine.base import Engine, EngineInfo, Generation, GenerationParams, Message

Reply = str | BaseException | Callable[[list[Message]], str]


@dataclass
class Call:
    messages: list[Message]
    params: GenerationParams


class FakeEngine(Engine):
    def __init__(self, default: str = "ok", context_length: int = 4096, delay_s: float = 0.0) -> None:
        self.default = default
        self.queue: deque[Reply] = deque()
        self.history: list[Call] = []
        self.delay_s = delay_s
        self._context = context_length
        self._loaded = True
        self.load_calls = 0

    def enqueue(self, *replies: Reply) -> FakeEngine:
        self.queue.extend(replies)
        return self

    def load(self) -> float:
        self.load_calls += 1
        was = self._loaded
        self._loaded = True
        return 0.0 if was else 0.01

    def unload(self) -> None:
        self._loaded = False

    @property
    def loaded(self) -> bool:
        return self._loaded

    def _next_text(self, messages: list[Message]) -> str:
        reply: Reply = self.queue.popleft() if self.queue else self.default
        if isinstance(reply, BaseException):
            raise reply
        return reply(messages) if callable(reply) else reply

    async def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        self.history.append(Call(list(messages), params))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        text = self._next_text(messages)
        words = text.split()[: params.max_tokens]
        return Generation(" ".join(words), self.count_chat_tokens(messages), len(words))

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[str | Generation]:
        result = await self.generate(messages, params)
        for i, word in enumerate(result.text.split()):
            yield word if i == 0 else " " + word
        yield result

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def count_chat_tokens(self, messages: list[Message]) -> int:
        return sum(self.count_tokens(m.content) + 3 for m in messages) + 2

    @property
    def context_length(self) -> int:
        return self._context

    def info(self) -> EngineInfo:
        return EngineInfo(
            model_loaded=self._loaded,
            model_path="fake",
            model_name="fake",
            model_device="cpu",
            device_type="cpu",
            model_parameters=0,
            model_size_gb=0.0,
            is_eval_mode=True,
            torch_version="n/a",
            cuda_available=False,
            cuda_version=None,
            gpu_name=None,
            context_length=self._context,
        )

    def memory(self) -> dict[str, Any]:
        return {"model_loaded": self._loaded, "device_type": "cpu", "total_vram": None}
