"""The first Engine: torch + transformers, one model kept warm for the life of the process.

Generation runs on one model thread (shared/engine/scheduler.py) that batches the
generations of concurrent jobs into shared forward passes; the event loop stays free for
cache hits, admin commands and new jobs while the model works.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from shared.engine import memory as memory_figures
from shared.engine.base import Engine, EngineInfo, Generation, GenerationParams, Message
from shared.engine.model_source import ModelSource, load_pretrained, resolve
from shared.engine.prefix_cache import PrefixCache
from shared.engine.sampling import Row, RowSampler
from shared.engine.scheduler import BatchScheduler, Job, OutOfMemory
from shared.errors import EngineError, EngineNotLoaded, EngineTimeout
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
        self._eos: set[int] = set()
        self._lock = threading.Lock()
        self._prefixes = PrefixCache(settings.prefix_cache_entries, settings.prefix_min_tokens)
        self._scheduler = BatchScheduler(
            self._run_batch, settings.max_batch_size, settings.max_queue, settings.batch_window_ms / 1000
        )

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
            if self._settings.torch_compile:
                model.forward = torch.compile(model.forward, dynamic=True)
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            tokenizer.padding_side = "left"  # decoder-only batches pad on the left
            self._model, self._tokenizer, self._facts = model, tokenizer, facts
            self._eos = _eos_ids(model, tokenizer)  # fixed for the model: read once, not per job
            seconds = time.perf_counter() - started
            self._facts["ready_s"] = round(seconds, 3)
            log.info("model loaded: %s on %s in %.2fs", self._source.label, self._device, seconds)
            return seconds

    def unload(self) -> None:
        with self._lock:
            self._model = None
            self._tokenizer = None
            self._prefixes.clear()
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
    def _job(self, messages: list[Message], params: GenerationParams, on_token: Any = None) -> Job:
        if not self.loaded:
            raise EngineNotLoaded("the model is not loaded")
        tok = self._require_tokenizer()
        ids = tok(self.render(messages), add_special_tokens=False)["input_ids"]
        loop = asyncio.get_running_loop()
        job = Job(list(ids), params, loop, loop.create_future(), on_token=on_token)
        if len(messages) > 1 and self._prefixes.entries:
            head = [{"role": m.role, "content": m.content} for m in messages[:-1]]
            text = str(tok.apply_chat_template(head, tokenize=False)) if tok.chat_template else ""
            prefix = tok(text, add_special_tokens=False)["input_ids"] if text else []
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
        tokens: asyncio.Queue[int] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        job = self._job(messages, params, on_token=lambda t: loop.call_soon_threadsafe(tokens.put_nowait, t))
        task = asyncio.ensure_future(self._await(job))
        ids: list[int] = []
        sent = ""
        while not (task.done() and tokens.empty()):
            getter = asyncio.ensure_future(tokens.get())
            await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                continue
            ids.append(getter.result())
            text = self._tokenizer.decode(ids, skip_special_tokens=True)
            if text.startswith(sent) and not text.endswith("\ufffd"):  # hold back half a UTF-8 character
                if len(text) > len(sent):
                    yield text[len(sent) :]
                sent = text
        yield await task

    def _run_batch(self, jobs: list[Job]) -> list[Generation]:
        """Runs on the model thread. Jobs sharing a cached prefix (same profile or conversation
        head) share one forward pass that starts after it; the others share a left-padded one."""
        import torch

        groups: dict[tuple[int, ...], list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault(tuple(job.prefix_ids), []).append(i)
        results: list[Generation | None] = [None] * len(jobs)
        try:
            for prefix, members in groups.items():
                batch = [jobs[i] for i in members]
                outs = self._run_with_prefix(batch, list(prefix)) if prefix else self._run_padded(batch)
                for i, out in zip(members, outs, strict=True):
                    results[i] = out
        except torch.cuda.OutOfMemoryError:
            memory_figures.free_cuda_cache()
            raise OutOfMemory from None
        return [r for r in results if r is not None]

    def _run_padded(self, jobs: list[Job]) -> list[Generation]:
        import torch

        width = max(len(j.prompt_ids) for j in jobs)
        pad = self._tokenizer.pad_token_id
        rows = [Row(j.params, width - len(j.prompt_ids), 0, j.on_token) for j in jobs]
        ids = torch.tensor([[pad] * r.pad + j.prompt_ids for r, j in zip(rows, jobs, strict=True)])
        mask = torch.tensor([[0] * r.pad + [1] * len(j.prompt_ids) for r, j in zip(rows, jobs, strict=True)])
        out = self._decode_rows(ids, mask, rows, cache=None)
        return [self._finish(j, out[i, width:].tolist()) for i, j in enumerate(jobs)]

    def _run_with_prefix(self, jobs: list[Job], prefix: list[int]) -> list[Generation]:
        """[prefix][padding][suffix]: the prefix's KV cache is reused, padding is masked out, and
        positions (from the mask) continue after the prefix exactly as without padding."""
        import torch

        n, pad = len(prefix), self._tokenizer.pad_token_id
        suffixes = [j.prompt_ids[n:] for j in jobs]
        width = max(len(s) for s in suffixes)
        cache = self._prefixes.get(self._model, prefix, self._device)
        if len(jobs) > 1:
            cache.batch_repeat_interleave(len(jobs))
        rows = [Row(j.params, width - len(s), n, j.on_token) for j, s in zip(jobs, suffixes, strict=True)]
        ids = torch.tensor([prefix + [pad] * r.pad + s for r, s in zip(rows, suffixes, strict=True)])
        mask = torch.tensor([[1] * n + [0] * r.pad + [1] * len(s) for r, s in zip(rows, suffixes, strict=True)])
        out = self._decode_rows(ids, mask, rows, cache=cache)
        return [self._finish(j, out[i, n + width :].tolist()) for i, j in enumerate(jobs)]

    def _decode_rows(self, ids: Any, mask: Any, rows: list[Row], cache: Any) -> Any:
        import torch
        from transformers import LogitsProcessorList

        eos = self._eos
        kwargs = {
            "max_new_tokens": max(r.params.max_tokens for r in rows),
            "do_sample": False,  # RowSampler picks every token; generate's greedy step only follows it
            "logits_processor": LogitsProcessorList([RowSampler(rows, eos)]),
            "temperature": None,
            "top_p": None,
            "top_k": None,
            "repetition_penalty": None,
            "max_time": self._settings.generation_timeout_s,
            "pad_token_id": self._tokenizer.pad_token_id,
            "eos_token_id": sorted(eos),
        }
        with torch.inference_mode():
            return self._model.generate(
                input_ids=ids.to(self._device), attention_mask=mask.to(self._device), cache=cache, **kwargs
            )

    def _finish(self, job: Job, new_ids: list[int]) -> Generation:
        end = next((i for i, t in enumerate(new_ids) if t in self._eos), None)
        kept = new_ids if end is None else new_ids[:end]
        # Decode only the generated ids: the prompt can never leak into the reply.
        text, stopped = cut_at_stop(self._tokenizer.decode(kept, skip_special_tokens=True), job.params.stop)
        # In a batch a row that reached its max_tokens is ended with a forced EOS: that is still "length".
        natural_end = end is not None and len(kept) < job.params.max_tokens
        reason: Literal["stop", "length"] = "stop" if stopped or natural_end else "length"
        return Generation(text.strip(), len(job.prompt_ids), len(kept), reason)

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
            extra=dict(
                self._facts,
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
