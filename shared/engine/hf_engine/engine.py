"""The first Engine: torch + transformers, one model kept warm for the life of the process.

A thin composition: loading (loading.py), prompt tokenization (tokenize.py), the model
thread that batches concurrent jobs (scheduler.py) running batches (batching.py) with
per-row sampling (sampling.py), and streaming (streaming.py). The event loop stays free
for cache hits, admin commands and new jobs while the model works.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator
from typing import Any

from shared.engine import memory as memory_figures
from shared.engine import streaming
from shared.engine.base import Engine, EngineInfo, Generation, GenerationParams, Message
from shared.engine.hf_engine.batching import BatchRunner
from shared.engine.hf_engine.loading import LoadedModel, load_model
from shared.engine.hf_engine.prefix_cache import PrefixCache
from shared.engine.hf_engine.scheduler import BatchScheduler, Job
from shared.engine.model_source import ModelSource, source_for
from shared.engine.tokenize import PromptTokenizer, TokenCounting
from shared.errors import EngineError, EngineNotLoaded, EngineTimeout
from shared.settings import Settings

WARM_UP = [Message("system", "You are a helpful assistant. Answer briefly and clearly, in plain words, one line.")]


class TransformersEngine(TokenCounting, Engine):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._source: ModelSource = source_for(settings)
        self._loaded: LoadedModel | None = None
        self._tokens: PromptTokenizer | None = None
        self._runner: BatchRunner | None = None
        self._device = "cpu"  # the device of the latest load
        self._lock = threading.Lock()
        self._prefixes = PrefixCache(
            settings.prefix_cache_entries, settings.prefix_min_tokens, int(settings.prefix_cache_mb * 2**20)
        )
        self._scheduler = BatchScheduler(
            self._run_batch, settings.max_batch_size, settings.max_queue, settings.batch_window_ms / 1000
        )

    # ---- lifecycle -----------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    @property
    def problem(self) -> str | None:
        return self._scheduler.fault

    def load(self) -> float:
        with self._lock:
            if self._loaded is not None:
                return 0.0
            loaded = load_model(self._settings, self._source)
            tokens = PromptTokenizer(loaded.tokenizer)
            runner = BatchRunner(loaded, self._prefixes, self._settings.generation_timeout_s)
            if self._settings.torch_compile:
                # On local names: no job can reach the runner (jobs need self._tokens, the model
                # thread needs self._runner) until the warm-up has finished driving the model.
                self._warm_up(runner, tokens, loaded)
            self._tokens, self._runner = tokens, runner
            self._loaded, self._device = loaded, loaded.device
            return float(loaded.facts["ready_s"])

    def _warm_up(self, runner: BatchRunner, tokens: PromptTokenizer, loaded: LoadedModel) -> None:
        """Pay torch.compile here, at start-up, outside any job's time budget: with cached prefixes
        and without, one row and two padded rows (torch specialises a dimension of size one, so
        a lone job and a batch compile different graphs)."""
        import time

        started = time.perf_counter()
        loop = asyncio.new_event_loop()  # the jobs are never resolved; they only carry the prompt
        try:
            for head, texts in itertools.product((WARM_UP, []), (["Say hello."], ["Hi.", "Say hello to everyone."])):
                batch = []
                for text in texts:
                    messages = [*head, Message("user", text)]
                    job = Job(tokens.prompt_ids(messages), GenerationParams(max_tokens=4), loop, loop.create_future())
                    prefix = tokens.head_ids(messages)
                    job.prefix_ids = prefix if self._prefixes.usable(prefix, job.prompt_ids) else []
                    batch.append(job)
                runner(batch)
        finally:
            loop.close()
        loaded.facts["compile_warm_up_s"] = round(time.perf_counter() - started, 3)

    def unload(self) -> None:
        """Stops the model thread first (waiting jobs fail, running ones stop), then frees the model."""
        self._scheduler.shutdown(EngineNotLoaded("the model was unloaded"))
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
    @property
    def context_length(self) -> int:
        native = getattr(self._model.config, "max_position_embeddings", None) if self._model is not None else None
        limit = self._settings.max_context_tokens
        return min(limit, int(native)) if native else limit

    # ---- generation ------------------------------------------------------------
    async def _job(self, messages: list[Message], params: GenerationParams) -> Job:
        tokens = self._require_tokens()
        loop = asyncio.get_running_loop()
        # Tokenizing a long prompt takes milliseconds (6-32 ms for 1k-6.5k tokens here): off the
        # event loop, so health and other jobs' deltas are not held up by it.
        prompt, prefix = await asyncio.to_thread(self._ids, tokens, messages)
        job = Job(prompt, params, loop, loop.create_future())
        if prefix and self._prefixes.usable(prefix, prompt):
            job.prefix_ids = prefix
        return job

    def _ids(self, tokens: PromptTokenizer, messages: list[Message]) -> tuple[list[int], list[int]]:
        """The prompt's ids and, where a cached prefix may serve, its head's ids."""
        head = tokens.head_ids(messages) if len(messages) > 1 and self._prefixes.entries else []
        return tokens.prompt_ids(messages), head

    async def _await(self, job: Job) -> Any:
        """Queue the job and wait; a caller that gives up (timeout, cancellation) cancels it."""
        self._scheduler.submit(job)
        timeout = self._settings.generation_timeout_s
        try:
            # generate() also gets max_time, so the model thread itself stops near the deadline.
            return await asyncio.wait_for(job.future, timeout + 5.0)
        except TimeoutError:
            raise EngineTimeout(f"generation exceeded {timeout:.0f}s") from None
        finally:
            if not job.future.done() or job.future.cancelled():
                self._scheduler.cancel(job)

    async def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        result: Generation = await self._await(await self._job(messages, params))
        return result

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[str | Generation]:
        """Text deltas as tokens are picked (in batches too), then the final Generation.

        Text that could still become a stop string is held back; a consumer that stops
        iterating (or fails) cancels the job."""
        job = await self._job(messages, params)
        feed = streaming.TextFeed(job.loop, job.cancel)
        job.on_text = feed
        task = asyncio.ensure_future(self._await(job))
        async for item in streaming.deltas(feed, task):
            yield item

    async def judge(self, messages: list[Message], answers: tuple[str, str] = ("yes", "no")) -> float:
        tokens = self._require_tokens()
        first, second = tokens.encode(answers[0])[:1], tokens.encode(answers[1])[:1]
        if not first or not second or first == second:
            raise EngineError(f"answers {answers!r} need distinct first tokens")
        loop = asyncio.get_running_loop()
        prompt = await asyncio.to_thread(tokens.prompt_ids, messages)
        job = Job(prompt, GenerationParams(max_tokens=1), loop, loop.create_future())
        job.judge_ids = (first[0], second[0])
        return float(await self._await(job))

    def _run_batch(self, jobs: list[Job]) -> list[Any]:
        """Runs on the model thread."""
        if self._runner is None:
            raise EngineNotLoaded("the model is not loaded")
        return list(self._runner(jobs))

    # ---- facts -------------------------------------------------------------------
    def info(self) -> EngineInfo:
        import torch

        model = self._model
        params = sum(p.numel() for p in model.parameters()) if model is not None else 0
        size = sum(p.numel() * p.element_size() for p in model.parameters()) if model is not None else 0
        cuda = torch.cuda.is_available()
        facts = self._loaded.facts if self._loaded is not None else {}
        runner = self._runner
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
                engine="transformers",
                scheduler={
                    "in_flight": self._scheduler.waiting + self._scheduler.running,
                    "waiting": self._scheduler.waiting,
                    "batches_run": self._scheduler.batches_run,
                    "largest_batch": self._scheduler.largest_batch,
                    "generate_calls": runner.generate_calls if runner else 0,
                    "tokens_generated": runner.tokens_generated if runner else 0,
                    "fault": self._scheduler.fault,
                },
                prefix_cache={
                    "hits": self._prefixes.hits,
                    "misses": self._prefixes.misses,
                    "held_mb": round(self._prefixes.held_bytes / 2**20, 1),
                },
            ),
        )

    def memory(self) -> dict[str, Any]:
        return memory_figures.snapshot(self._device, self._model)
