"""Device and dtype choice, the same for every engine."""

from __future__ import annotations

from typing import Any

from shared.errors import EngineError
from shared.settings import Settings


def pick_device(settings: Settings) -> str:
    import torch

    wanted = settings.model_device
    if wanted == "cuda" and not torch.cuda.is_available():
        raise EngineError("MODEL_DEVICE=cuda but no CUDA device is available")
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return wanted


def pick_dtype(settings: Settings, device: str) -> Any:
    import torch

    if settings.model_dtype == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    return getattr(torch, settings.model_dtype)
