"""A scriptable engine for fast unit tests (after simonw/llm's mock model).

Replies are scripted with `enqueue` (text, an exception to raise, or a callable of the
messages); `history` records every call. A reply is produced token by token: the script is
cut into token-sized pieces (a word's leading whitespace plus at most `token_chars`
characters, like a BPE vocabulary splits long words), and `stream` decodes them in a task of
its own, one per `token_delay_s` (at least one event-loop turn), running ahead of its consumer
as the model thread does, and yields each as it arrives. Closing the stream (the consumer
stops iterating) or cancelling it stops decoding; `streams` records how many tokens each stream
generated. `judge` answers from a queue of probabilities or exceptions; `judge_calls`
records every call. Prompt tokens are counted as whitespace-separated words, which is all
the fitting tests need; the real tokenizer is exercised by the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

from shared.engine.base import Engine, EngineInfo, Generation, GenerationParams, Message
from shared.errors import EngineError

Reply = str | BaseException | Callable[[list[Message]], str]
Verdict = float | BaseException


@dataclass
class Call:
    messages: list[Message]
    params: GenerationParams


@dataclass
class StreamRecord:
    """One `stream` call: how far decoding got and how it ended."""

    planned: int  # tokens the script would produce within max_tokens
    generated: int = 0  # tokens decoded before the stream ended or was stopped
    finished: bool = False  # ran to the end of its script
    stopped: bool = False  # closed or cancelled by its consumer before the end


@dataclass
class JudgeCall:
    messages: list[Message]
    answers: tuple[str, str]


def tokens_of(text: str, token_chars: int = 4) -> list[str]:
    """Token-sized pieces whose concatenation is `text`."""
    pieces: list[str] = []
    for space, word in re.findall(r"(\s*)(\S*)", text):
        if not space and not word:
            continue
        chunks = [word[i : i + token_chars] for i in range(0, len(word), token_chars)] or [""]
        pieces.append(space + chunks[0])
        pieces.extend(chunks[1:])
    return pieces


class FakeEngine(Engine):
    def __init__(
        self,
        default: str = "ok",
        context_length: int = 4096,
        delay_s: float = 0.0,
        token_delay_s: float = 0.0,
        token_chars: int = 4,
    ) -> None:
        self.default = default
        self.queue: deque[Reply] = deque()
        self.history: list[Call] = []
        self.streams: list[StreamRecord] = []
        self.delay_s, self.token_delay_s, self.token_chars = delay_s, token_delay_s, token_chars
        self.judge_queue: deque[Verdict] = deque()
        self.judge_default: Verdict = EngineError("FakeEngine: no judge verdict queued")
        self.judge_calls: list[JudgeCall] = []
        self._context = context_length
        self._loaded = True
        self.load_calls = 0

    def enqueue(self, *replies: Reply) -> FakeEngine:
        self.queue.extend(replies)
        return self

    def enqueue_judge(self, *verdicts: Verdict) -> FakeEngine:
        """Queue `judge` answers: a probability of answers[0], or an exception to raise."""
        self.judge_queue.extend(verdicts)
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

    async def _script(self, messages: list[Message], params: GenerationParams) -> tuple[list[str], bool]:
        """The reply's tokens within max_tokens and the stop strings, and whether max_tokens cut it."""
        self.history.append(Call(list(messages), params))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        reply: Reply = self.queue.popleft() if self.queue else self.default
        if isinstance(reply, BaseException):
            raise reply
        text = reply(messages) if callable(reply) else reply
        cuts = [text.find(s) for s in params.stop if s and s in text]
        text = text[: min(cuts)] if cuts else text  # the row stops at its first stop string
        pieces = tokens_of(text, self.token_chars)
        return pieces[: params.max_tokens], len(pieces) > params.max_tokens

    def _result(self, messages: list[Message], pieces: list[str], cut: bool) -> Generation:
        reason: Literal["stop", "length"] = "length" if cut else "stop"
        return Generation("".join(pieces).strip(), self.count_chat_tokens(messages), len(pieces), reason)

    async def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        pieces, cut = await self._script(messages, params)
        return self._result(messages, pieces, cut)

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[str | Generation]:
        pieces, cut = await self._script(messages, params)
        record = StreamRecord(planned=len(pieces))
        self.streams.append(record)
        tokens: asyncio.Queue[str | None] = asyncio.Queue()

        async def decode() -> None:  # like the model thread: runs ahead of its consumer until stopped
            for piece in pieces:
                await asyncio.sleep(self.token_delay_s)  # one decode step
                record.generated += 1
                tokens.put_nowait(piece)
            record.finished = True
            tokens.put_nowait(None)

        decoding = asyncio.ensure_future(decode())
        try:
            while (piece := await tokens.get()) is not None:
                yield piece
        finally:  # the consumer closed the stream or was cancelled: stop decoding
            if not decoding.done():
                record.stopped = True
                decoding.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await decoding
        yield self._result(messages, pieces, cut)

    async def judge(self, messages: list[Message], answers: tuple[str, str] = ("yes", "no")) -> float:
        self.judge_calls.append(JudgeCall(list(messages), answers))
        verdict = self.judge_queue.popleft() if self.judge_queue else self.judge_default
        if isinstance(verdict, BaseException):
            raise verdict
        return verdict

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
