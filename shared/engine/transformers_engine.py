"""The first Engine: torch + transformers, one model kept warm for the life of the process.

A thin composition: loading (loading.py), prompt tokenization (tokenize.py), the model
thread that batches concurrent jobs (scheduler.py) running batches (batching.py) with
per-row sampling (sampling.py), and streaming (streaming.py). The event loop stays free
for cache hits, admin commands and new jobs while the model works.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

from shared.engine import memory as memory_figures
from shared.engine import streaming
from shared.engine.base import Engine, EngineInfo, Generation, GenerationParams, Message
from shared.engine.batching import BatchRunner
from shared.engine.loading import LoadedModel, load_model
from shared.engine.model_source import ModelSource, resolve
from shared.engine.prefix_cache import PrefixCache
from shared.engine.scheduler import BatchScheduler, Job
from shared.engine.tokenize import PromptTokenizer
from shared.errors import EngineNotLoaded, EngineTimeout
from shared.settings import Settings


class TransformersEngine(Engine):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._source: ModelSource = resolve(settings.model_path)
        self._loaded: LoadedModel | None = None
        self._tokens: PromptTokenizer | None = None
        self._runner: BatchRunner | None = None
        self._device = "cpu"  # the device of the latest load
        self._lock = threading.Lock()
        self._prefixes = PrefixCache(settings.prefix_cache_entries, settings.prefix_min_tokens)
        self._scheduler = BatchScheduler(
            self._run_batch, settings.max_batch_size, settings.max_queue, settings.batch_window_ms / 1000
        )

    # ---- lifecycle -----------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def load(self) -> float:
        with self._lock:
            if self._loaded is not None:
                return 0.0
            loaded = load_model(self._settings, self._source)
            self._tokens = PromptTokenizer(loaded.tokenizer)
            self._runner = BatchRunner(loaded, self._prefixes, self._settings.generation_timeout_s)
            self._loaded, self._device = loaded, loaded.device
            return float(loaded.facts["ready_s"])

    def unload(self) -> None:
        with self._lock:
            self._loaded = None
            self._tokens = None
            self._runner = None
            self._prefixes.clear()
            memory_figures.free_cuda_cache()

    @property
    def _model(self) -> Any:
        return self._loaded.model if self._loaded is not None else None

    @property
    def _tokenizer(self) -> Any:
        return self._loaded.tokenizer if self._loaded is not None else None

    # ---- tokens --------------------------------------------------------------
    def render(self, messages: list[Message]) -> str:
        return self._require_tokens().render(messages)

    def count_tokens(self, text: str) -> int:
        return self._require_tokens().count_tokens(text)

    def count_chat_tokens(self, messages: list[Message]) -> int:
        return self._require_tokens().count_chat_tokens(messages)

    @property
    def context_length(self) -> int:
        native = getattr(self._model.config, "max_position_embeddings", None) if self._model is not None else None
        limit = self._settings.max_context_tokens
        return min(limit, int(native)) if native else limit

    def _require_tokens(self) -> PromptTokenizer:
        if self._tokens is None:
            raise EngineNotLoaded("the model is not loaded")
        return self._tokens

    # ---- generation ------------------------------------------------------------
    def _job(self, messages: list[Message], params: GenerationParams, on_token: Any = None) -> Job:
        tokens = self._require_tokens()
        ids = tokens.prompt_ids(messages)
        loop = asyncio.get_running_loop()
        job = Job(ids, params, loop, loop.create_future(), on_token=on_token)
        if len(messages) > 1 and self._prefixes.entries:
            prefix = tokens.head_ids(messages)
            if self._prefixes.usable(prefix, job.prompt_ids):
                job.prefix_ids = prefix
        return job

    async def _await(self, job: Job) -> Generation:
        self._scheduler.submit(job)
        timeout = self._settings.generation_timeout_s
        try:
            # generate() also gets max_time, so the model thread itself stops near the deadline.
            return await asyncio.wait_for(asyncio.shield(job.future), timeout + 5.0)
        except TimeoutError:
            raise EngineTimeout(f"generation exceeded {timeout:.0f}s") from None

    async def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        return await self._await(self._job(messages, params))

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[str | Generation]:
        """Text deltas as tokens are picked (in batches too), then the final Generation."""
        feed = streaming.TokenFeed(asyncio.get_running_loop())
        job = self._job(messages, params, on_token=feed)
        task = asyncio.ensure_future(self._await(job))
        tok = self._require_tokens().tokenizer
        async for item in streaming.deltas(feed, task, lambda ids: tok.decode(ids, skip_special_tokens=True)):
            yield item

    def _run_batch(self, jobs: list[Job]) -> list[Generation]:
        """Runs on the model thread."""
        if self._runner is None:
            raise EngineNotLoaded("the model is not loaded")
        return self._runner(jobs)

    # ---- facts -------------------------------------------------------------------
    def info(self) -> EngineInfo:
        import torch

        model = self._model
        params = sum(p.numel() for p in model.parameters()) if model is not None else 0
        size = sum(p.numel() * p.element_size() for p in model.parameters()) if model is not None else 0
        cuda = torch.cuda.is_available()
        facts = self._loaded.facts if self._loaded is not None else {}
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
            extra=dict(
                facts,
                dtype=str(model.dtype) if model is not None else None,
                scheduler={
                    "waiting": self._scheduler.waiting,
                    "batches_run": self._scheduler.batches_run,
                    "largest_batch": self._scheduler.largest_batch,
                },
                prefix_cache={"hits": self._prefixes.hits, "misses": self._prefixes.misses},
            ),
        )

    def memory(self) -> dict[str, Any]:
        return memory_figures.snapshot(self._device, self._model)
