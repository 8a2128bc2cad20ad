"""The first Engine: torch + transformers, one model kept warm for the life of the process.

Generation runs on one dedicated thread so the event loop stays free for cache hits,
admin commands and new jobs while the model works.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from shared.engine import memory as memory_figures
from shared.engine.base import Engine, EngineInfo, Generation, GenerationParams, Message
from shared.engine.model_source import ModelSource, load_pretrained, resolve
from shared.errors import EngineError, EngineNotLoaded, EngineOutOfMemory, EngineTimeout
from shared.settings import Settings

log = logging.getLogger(__name__)


class TransformersEngine(Engine):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._source: ModelSource = resolve(settings.model_path)
        self._model: Any = None
        self._tokenizer: Any = None
        self._device = "cpu"
        self._facts: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")

    # ---- lifecycle -----------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> float:
        with self._lock:
            if self._model is not None:
                return 0.0
            import torch

            started = time.perf_counter()
            self._device = self._pick_device(torch)
            dtype = self._pick_dtype(torch)
            model, tokenizer, facts = load_pretrained(
                self._source, self._settings.model_cache_dir, dtype, self._settings.attn_implementation
            )
            model.to(self._device)
            model.eval()
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            tokenizer.padding_side = "left"  # decoder-only batches pad on the left
            self._model, self._tokenizer, self._facts = model, tokenizer, facts
            seconds = time.perf_counter() - started
            self._facts["ready_s"] = round(seconds, 3)
            log.info("model loaded: %s on %s in %.2fs", self._source.label, self._device, seconds)
            return seconds

    def unload(self) -> None:
        with self._lock:
            self._model = None
            self._tokenizer = None
            memory_figures.free_cuda_cache()

    def _pick_device(self, torch: Any) -> str:
        wanted = self._settings.model_device
        if wanted == "cuda" and not torch.cuda.is_available():
            raise EngineError("MODEL_DEVICE=cuda but no CUDA device is available")
        if wanted == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return wanted

    def _pick_dtype(self, torch: Any) -> Any:
        name = self._settings.model_dtype
        if name == "auto":
            return torch.bfloat16 if self._device == "cuda" else torch.float32
        return getattr(torch, name)

    # ---- tokens --------------------------------------------------------------
    def render(self, messages: list[Message]) -> str:
        tok = self._require_tokenizer()
        chat = [{"role": m.role, "content": m.content} for m in messages]
        if getattr(tok, "chat_template", None):
            return str(tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=False))
        return "".join(f"{m.role}: {m.content}\n" for m in messages) + "assistant: "

    def count_tokens(self, text: str) -> int:
        return len(self._require_tokenizer()(text, add_special_tokens=False)["input_ids"])

    def count_chat_tokens(self, messages: list[Message]) -> int:
        return self.count_tokens(self.render(messages))

    @property
    def context_length(self) -> int:
        native = getattr(self._model.config, "max_position_embeddings", None) if self._model is not None else None
        limit = self._settings.max_context_tokens
        return min(limit, int(native)) if native else limit

    def _require_tokenizer(self) -> Any:
        if self._tokenizer is None:
            raise EngineNotLoaded("the model is not loaded")
        return self._tokenizer

    # ---- generation ------------------------------------------------------------
    async def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        if not self.loaded:
            raise EngineNotLoaded("the model is not loaded")
        loop = asyncio.get_running_loop()
        timeout = self._settings.generation_timeout_s
        future = loop.run_in_executor(self._executor, self._generate_with_retry, messages, params)
        try:
            # generate() also gets max_time, so the thread itself stops near the deadline.
            return await asyncio.wait_for(future, timeout + 5.0)
        except TimeoutError:
            raise EngineTimeout(f"generation exceeded {timeout:.0f}s") from None

    def _generate_with_retry(self, messages: list[Message], params: GenerationParams) -> Generation:
        import torch

        for attempt in (1, 2):
            try:
                return self._generate_sync(messages, params)
            except torch.cuda.OutOfMemoryError:
                memory_figures.free_cuda_cache()
                log.warning("CUDA out of memory (attempt %d)", attempt)
            except EngineError:
                raise
            except Exception as exc:
                log.exception("generation failed")
                raise EngineError(f"generation failed: {type(exc).__name__}") from None
        raise EngineOutOfMemory("the GPU ran out of memory for this job")

    def _generate_sync(self, messages: list[Message], params: GenerationParams) -> Generation:
        import torch

        tok, model = self._require_tokenizer(), self._model
        if model is None:
            raise EngineNotLoaded("the model is not loaded")
        enc = tok(self.render(messages), return_tensors="pt", add_special_tokens=False).to(self._device)
        prompt_len = int(enc["input_ids"].shape[1])
        kwargs = generation_kwargs(params, self._settings.generation_timeout_s)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        with torch.inference_mode():
            out = model.generate(**enc, **kwargs, pad_token_id=tok.pad_token_id, tokenizer=tok)
        new_ids = out[0, prompt_len:].tolist()
        # Decode only the generated ids: the prompt can never leak into the reply.
        text = tok.decode(new_ids, skip_special_tokens=True)
        text, stopped = cut_at_stop(text, params.stop)
        hit_eos = bool(new_ids) and new_ids[-1] in _eos_ids(model, tok)
        reason: Literal["stop", "length"] = (
            "stop" if stopped or hit_eos or len(new_ids) < params.max_tokens else "length"
        )
        return Generation(text.strip(), prompt_len, len(new_ids), reason)

    # ---- facts -------------------------------------------------------------------
    def info(self) -> EngineInfo:
        import torch

        model = self._model
        params = sum(p.numel() for p in model.parameters()) if model is not None else 0
        size = sum(p.numel() * p.element_size() for p in model.parameters()) if model is not None else 0
        cuda = torch.cuda.is_available()
        return EngineInfo(
            model_loaded=model is not None,
            model_path=str(self._source.directory / (self._source.gguf_file or "")).rstrip("/"),
            model_name=self._source.label,
            model_device=str(next(model.parameters()).device) if model is not None else self._device,
            device_type=self._device,
            model_parameters=int(params),
            model_size_gb=round(size / 2**30, 3),
            is_eval_mode=bool(model is not None and not model.training),
            torch_version=torch.__version__,
            cuda_available=cuda,
            cuda_version=torch.version.cuda,
            gpu_name=torch.cuda.get_device_name(0) if cuda else None,
            context_length=self.context_length,
            extra=dict(self._facts, dtype=str(model.dtype) if model is not None else None),
        )

    def memory(self) -> dict[str, Any]:
        return memory_figures.snapshot(self._device, self._model)


def generation_kwargs(params: GenerationParams, max_time: float) -> dict[str, Any]:
    sample = params.temperature > 0
    kwargs: dict[str, Any] = {
        "max_new_tokens": params.max_tokens,
        "do_sample": sample,
        "repetition_penalty": params.repetition_penalty,
        "max_time": max_time,
    }
    if sample:
        kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or None)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    if params.stop:
        kwargs["stop_strings"] = list(params.stop)
    return kwargs


def cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """Cut the reply at the first stop string (the stop string itself is not returned)."""
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


def _eos_ids(model: Any, tok: Any) -> set[int]:
    ids = model.generation_config.eos_token_id
    found = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tok.eos_token_id is not None:
        found.add(tok.eos_token_id)
    return found
