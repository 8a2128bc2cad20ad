"""Our settings and parameters in vLLM's terms: the engine's arguments, each request's
SamplingParams, and the model directory vLLM reads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from shared.engine.base import GenerationParams
from shared.engine.model_source import ModelSource, converted_dir, load_pretrained
from shared.settings import Settings

# vLLM's CPU build reserves GPU_MEMORY_UTILIZATION of the NUMA node's RAM at start and refuses to
# start when less is free; the KV pool there is VLLM_CPU_KVCACHE_SPACE GiB instead. A small share
# is enough for the check on a CPU worker that also runs tests and a store bridge beside it.
CPU_MEMORY_UTILIZATION = 0.3


def model_directory(source: ModelSource, cache_root: Path) -> Path:
    """A directory vLLM can load (config.json + safetensors + tokenizer). A GGUF (the embedded
    model) goes through the same converted cache the transformers engine writes and reads:
    converted once, on the first start of either engine."""
    if source.gguf_file is None:
        return source.directory
    target = converted_dir(source, cache_root)
    if not (target / "config.json").is_file():
        import torch

        load_pretrained(source, cache_root, torch.float32, "sdpa")  # writes `target` as a side effect
    return target


def eager(settings: Settings, device: str) -> bool:
    return settings.enforce_eager if settings.enforce_eager is not None else device != "cuda"


# Tokens per KV block when VLLM_BLOCK_SIZE is 0. The prefix cache reuses whole blocks only, so a
# stateful chat's history is reused up to its last full block. vLLM's CPU build defaults to 128 (its
# attention kernels want a multiple of 32): a conversation under 128 tokens would be prefilled in
# full on every turn. 32 is the smallest those kernels take; CUDA keeps vLLM's 16.
DEFAULT_BLOCK_SIZE = {"cuda": 16, "cpu": 32}


def block_size(settings: Settings, device: str) -> int:
    return settings.vllm_block_size or DEFAULT_BLOCK_SIZE.get(device, 16)


def max_num_seqs(settings: Settings) -> int:
    return settings.vllm_max_num_seqs or max(32, settings.max_batch_size * 4)


def engine_args(settings: Settings, directory: Path, device: str, dtype: Any, context: int) -> Any:
    from vllm.engine.arg_utils import AsyncEngineArgs

    if device == "cpu":
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(settings.vllm_kv_cache_gib))
    utilization = settings.gpu_memory_utilization if device == "cuda" else CPU_MEMORY_UTILIZATION
    extra: dict[str, Any] = {}
    if narrows(device):
        from shared.engine.vllm_engine.narrow import NarrowTopKTopP

        extra["logits_processors"] = [NarrowTopKTopP]
    return AsyncEngineArgs(
        model=str(directory),
        tokenizer=str(directory),
        dtype=dtype,
        max_model_len=context,
        gpu_memory_utilization=utilization,
        enforce_eager=eager(settings, device),
        block_size=block_size(settings, device),
        enable_prefix_caching=True,  # replaces our PrefixCache: paged, shared, bounded by the KV pool
        max_num_seqs=max_num_seqs(settings),
        disable_log_stats=False,  # our stat logger reads KV use and prefix-cache hits from them
        **extra,
    )


def narrows(device: str) -> bool:
    """On vLLM's CPU build, top-k + top-p go through our NarrowTopKTopP (narrow.py: the CPU sampler
    sorts the whole vocabulary for top-p every step); on CUDA vLLM's own sampling kernels serve."""
    return device != "cuda"


def sampling(params: GenerationParams, narrow: bool = False) -> Any:
    """`narrow`: top-k and top-p go to NarrowTopKTopP (only where it is loaded: `narrows`), when
    there is a top-k to narrow to and sampling is not greedy; vLLM's sampler then sees them off."""
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    top_k, top_p, extra = params.top_k, params.top_p, None
    if narrow and params.temperature > 0 and top_k > 0 and top_p < 1.0:
        from shared.engine.vllm_engine.narrow import KEY

        top_k, top_p, extra = 0, 1.0, {KEY: [params.top_k, params.top_p]}
    return SamplingParams(
        n=1,
        max_tokens=params.max_tokens,
        temperature=params.temperature,
        top_p=top_p,
        top_k=top_k,  # 0 is "off" in both
        extra_args=extra,
        repetition_penalty=params.repetition_penalty,
        seed=params.seed,
        # vLLM ends the request there; our ReplyText trims and counts (vLLM refuses an empty stop string)
        stop=[s for s in params.stop if s] or None,
        output_kind=RequestOutputKind.DELTA,
        skip_special_tokens=True,
    )


def judging(first: int, second: int) -> Any:
    """One greedy token with both answers' raw log-probabilities (`logprob_token_ids`): their
    difference is the difference of their logits, so the two-way softmax is the transformers
    engine's. Raw log-probabilities keep vLLM's fast sampler for every other request (an
    engine-wide processed-logprobs mode would not)."""
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    return SamplingParams(
        n=1,
        max_tokens=1,
        temperature=0.0,
        logprob_token_ids=[first, second],
        output_kind=RequestOutputKind.FINAL_ONLY,
    )
