"""The chat action's input."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.schemas.common import NonBlank, WireModel


class HistoryItem(WireModel):
    """One earlier turn; the platform sends `sender`, OpenAI-style callers send `role`."""

    role: Literal["user", "assistant"] | None = None
    sender: Literal["user", "assistant"] | None = None
    content: str

    @model_validator(mode="after")
    def _one_role(self) -> HistoryItem:
        if self.role is None and self.sender is None:
            raise ValueError("needs 'role' or 'sender' (user or assistant)")
        return self

    @property
    def speaker(self) -> Literal["user", "assistant"]:
        return self.role or self.sender  # type: ignore[return-value]


class ChatRequest(WireModel):
    message: NonBlank
    system_prompt: str | None = None
    conversation_id: str | None = Field(None, min_length=1, max_length=200)
    project_id: str | None = Field(None, max_length=200)
    context_type: str = Field("general", min_length=1, max_length=64)
    conversation_history: list[HistoryItem] | None = None
    unrestricted: bool = False
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0)
    repetition_penalty: float | None = Field(None, ge=1.0, le=2.0)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    stop: list[str] | None = Field(None, max_length=8)
