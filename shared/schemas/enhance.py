"""The enhance action's input."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.schemas.common import SEED_MAX, Identifier, JsonObject, NonBlank, Text, WireModel


class EnhanceRequest(WireModel):
    prompt: NonBlank
    job_type: Identifier = "sdxl_image_fast"
    quality: Literal["fast", "high"] = "fast"
    enhancement_type: Identifier = "manual"
    system_prompt: Text | None = None
    context: JsonObject | None = None
    seed: int | None = Field(None, ge=0, le=SEED_MAX)
    mode: Literal["intelligent", "legacy"] = "intelligent"
