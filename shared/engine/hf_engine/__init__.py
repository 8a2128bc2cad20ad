"""The transformers engine: our own scheduler batching jobs into transformers' `generate`.

It earns its place as the embedded default's engine (a start of seconds, no engine process)
and for fast tests; production serves on `shared.engine.vllm_engine`. Nothing outside
`shared/engine/` imports this package's modules: callers go through `shared.engine.factory`.
"""

from shared.engine.hf_engine.engine import TransformersEngine

__all__ = ["TransformersEngine"]
