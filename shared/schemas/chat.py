"""The chat action's input."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from shared.schemas.common import (
    MAX_TOKENS_MAX,
    SEED_MAX,
    TOP_K_MAX,
    Identifier,
    NonBlank,
    Text,
    WireModel,
    well_formed,
)

STOP_MAX_CHARS = 64
Stop = Annotated[str, StringConstraints(min_length=1, max_length=STOP_MAX_CHARS), AfterValidator(well_formed)]


class HistoryItem(WireModel):
    """One earlier turn; the platform sends `sender`, OpenAI-style callers send `role`."""

    role: Literal["user", "assistant"] | None = None
    sender: Literal["user", "assistant"] | None = None
    content: Text

    @model_validator(mode="after")
    def _one_role(self) -> HistoryItem:
        if self.role is None and self.sender is None:
            raise ValueError("needs 'role' or 'sender' (user or assistant)")
        if self.role is not None and self.sender is not None and self.role != self.sender:
            raise ValueError(f"has role '{self.role}' but sender '{self.sender}'; send one of them, or both equal")
        return self

    @property
    def speaker(self) -> Literal["user", "assistant"]:
        return self.role or self.sender  # type: ignore[return-value]


class ChatRequest(WireModel):
    message: NonBlank
    system_prompt: Text | None = None
    conversation_id: Identifier | None = None
    project_id: Identifier | None = None
    user_id: Identifier | None = None  # the signed-in user: conversations are scoped to it (docs/STATE.md)
    context_type: Identifier = "general"
    conversation_history: list[HistoryItem] | None = None
    unrestricted: bool = False
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_MAX)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0, le=TOP_K_MAX)
    repetition_penalty: float | None = Field(None, ge=1.0, le=2.0)
    seed: int | None = Field(None, ge=0, le=SEED_MAX)
    stop: list[Stop] | None = Field(None, max_length=8)
