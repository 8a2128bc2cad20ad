"""The enhance action's input."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from shared.schemas.common import NonBlank, WireModel


class EnhanceRequest(WireModel):
    prompt: NonBlank
    job_type: str = Field("sdxl_image_fast", min_length=1, max_length=64)
    quality: Literal["fast", "high"] = "fast"
    enhancement_type: str = Field("manual", max_length=64)
    system_prompt: str | None = None
    context: dict[str, Any] | None = None
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    mode: Literal["intelligent", "legacy"] = "intelligent"
