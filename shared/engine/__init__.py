"""Engine interface and implementations."""

from shared.engine.base import Engine, EngineInfo, Generation, GenerationParams, Message

__all__ = ["Engine", "EngineInfo", "Generation", "GenerationParams", "Message"]
