"""The model judge: one fixed yes/no question to the loaded model, for what lists cannot see.

The policy receives an async `ask` callable and a token counter (the composition root wraps
`Engine.judge` and `Engine.count_tokens`), so this package never imports the engine.

What the judge sees: the caller's current message (or prompt) whole and first, then the system
prompt, then the newest earlier turns, within `max_tokens` counted with the engine's tokenizer
(a 20,000-character history never hides the message). When the model cannot answer (an engine
error, overload, or no answer within `timeout_s`) the policy decides: see ContentPolicy.confirm.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shared.policy.lexicon import read_json

log = logging.getLogger("policy")

# (role, content) pairs -> probability of the first answer ("yes") against the second ("no").
JudgeAsk = Callable[[list[tuple[str, str]]], Awaitable[float]]
CountTokens = Callable[[str], int]

_SEPARATOR = "\n---\n"


@dataclass(frozen=True)
class JudgeInput:
    """A request as the judge reads it."""

    message: str  # the current message, or enhance's prompt: always shown whole
    system: str = ""  # the caller's system prompt
    turns: Sequence[str] = ()  # earlier turns (or enhance's context), oldest first


@dataclass(frozen=True)
class JudgeStats:
    """What health reports: how often the judge was asked, could not answer, and refused for it."""

    enabled: bool = False
    asked: int = 0
    unavailable: int = 0
    refused_unavailable: int = 0


@dataclass
class _Counts:
    asked: int = 0
    unavailable: int = 0
    refused_unavailable: int = 0


@dataclass(frozen=True)
class ModelJudge:
    ask: JudgeAsk
    count: CountTokens
    system: str
    question: str
    threshold: float = 0.5
    max_tokens: int = 1024
    timeout_s: float = 10.0
    counts: _Counts = field(default_factory=_Counts, compare=False)

    @classmethod
    def of(cls, ask: JudgeAsk, count: CountTokens, extra_dir: Path | None = None) -> ModelJudge:
        data = read_json("judge.json", extra_dir)
        return cls(
            ask,
            count,
            data["system"],
            data["question"],
            float(data["threshold"]),
            int(data["max_tokens"]),
            float(data["timeout_s"]),
        )

    def shown(self, request: JudgeInput) -> str:
        """The message whole, then the system prompt's start, then the newest turns, within max_tokens."""
        parts = [request.message]
        left = self.max_tokens - self.count(request.message)
        if request.system and left > 0:
            system, left = self._fit(request.system, left, keep_start=True)
            parts.append(system)
        turns: list[str] = []
        for turn in reversed(request.turns):  # newest first
            if left <= 0:
                break
            if turn:
                kept, left = self._fit(turn, left, keep_start=False)
                turns.append(kept)
        return _SEPARATOR.join([*parts, *reversed(turns)])

    def messages(self, request: JudgeInput) -> list[tuple[str, str]]:
        return [("system", self.system), ("user", self.question.format(text=self.shown(request)))]

    async def score(self, request: JudgeInput) -> float | None:
        """P(yes), or None when the model could not answer (counted and logged)."""
        self.counts.asked += 1
        try:
            messages = await asyncio.to_thread(self.messages, request)  # tokenizing a long request
            return float(await asyncio.wait_for(self.ask(messages), self.timeout_s))
        except Exception as exc:  # noqa: BLE001 - any failure means "no answer"; the policy decides
            self.counts.unavailable += 1
            log.warning("policy judge unavailable (%s)", type(exc).__name__)
            return None

    def stats(self) -> JudgeStats:
        c = self.counts
        return JudgeStats(True, c.asked, c.unavailable, c.refused_unavailable)

    def _fit(self, text: str, left: int, keep_start: bool) -> tuple[str, int]:
        """`text`, or as much of it as fits in `left` tokens (its start or its end), and what is left."""
        left -= self.count(_SEPARATOR)
        tokens = self.count(text)
        while tokens > left > 0:
            keep = max(int(len(text) * left / tokens) - 1, 0)  # a proportional cut, then shrink
            text = text[:keep] if keep_start else text[len(text) - keep :]
            tokens = self.count(text)
        return (text, left - tokens) if left > 0 else ("", 0)
