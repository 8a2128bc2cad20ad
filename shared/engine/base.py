"""The engine contract. Services receive an Engine; they never build one."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int = 256
    temperature: float = 0.7  # 0 means greedy decoding
    top_p: float = 0.9
    top_k: int = 50
    repetition_penalty: float = 1.1
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"] = "stop"


@dataclass
class EngineInfo:
    model_loaded: bool
    model_path: str
    model_name: str
    model_device: str
    device_type: str
    model_parameters: int
    model_size_gb: float
    is_eval_mode: bool
    torch_version: str
    cuda_available: bool
    cuda_version: str | None
    gpu_name: str | None
    context_length: int
    extra: dict[str, Any] = field(default_factory=dict)


class Engine(abc.ABC):
    """Generates chat replies and counts tokens with the model's own tokenizer."""

    @abc.abstractmethod
    def load(self) -> float:
        """Load the model if needed; return seconds spent (0.0 when already loaded)."""

    @abc.abstractmethod
    def unload(self) -> None: ...

    @property
    @abc.abstractmethod
    def loaded(self) -> bool: ...

    @property
    def problem(self) -> str | None:
        """Why a loaded engine cannot serve right now (its model thread stopped); None when fine."""
        return None

    @abc.abstractmethod
    async def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        """Reply to `messages`; raises EngineError subclasses on failure."""

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[str | Generation]:
        """Yield text deltas, then the final Generation; the default yields the whole reply at once."""
        result = await self.generate(messages, params)
        yield result.text
        yield result

    async def judge(self, messages: list[Message], answers: tuple[str, str] = ("yes", "no")) -> float:
        """Probability of `answers[0]` against `answers[1]` as the reply's first token.

        One forward pass over `messages` rendered with the generation prompt, reading the
        two answers' next-token logits (softmax over just those two). Engines that cannot
        do this raise EngineError; callers treat that as "no decision".
        """
        from shared.errors import EngineError

        raise EngineError(f"{type(self).__name__} cannot judge")

    @abc.abstractmethod
    def count_tokens(self, text: str) -> int: ...

    @abc.abstractmethod
    def count_chat_tokens(self, messages: list[Message]) -> int:
        """Tokens of the rendered chat prompt, generation prompt included."""

    @property
    @abc.abstractmethod
    def context_length(self) -> int: ...

    @abc.abstractmethod
    def info(self) -> EngineInfo: ...

    @abc.abstractmethod
    def memory(self) -> dict[str, Any]: ...
