"""Pieces shared by the wire schemas."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or whitespace")
    return value


NonBlank = Annotated[str, AfterValidator(_not_blank)]


class WireModel(BaseModel):
    """Strict types (no '5' for 5); unknown fields are ignored so callers can evolve."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
