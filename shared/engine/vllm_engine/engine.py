"""VllmEngine: our Engine contract over vLLM's AsyncLLM.

What stays ours, shared with the transformers engine: prompts are rendered and tokenized by
`PromptTokenizer` and handed to vLLM as token ids (`TokensPrompt`), so caller text stays
literal and token counts match history fitting; each reply's text, stop strings, kept-token
count and stream hold-back come from the shared `ReplyText` fed with vLLM's token ids, so both
engines end and count replies alike. What is vLLM's: scheduling (continuous batching: a request
joins and leaves between decode steps), paged KV with automatic prefix caching, sampling
(per-request seeds), and the judge's restricted one-token pass with its log-probabilities.

A caller that gives up (timeout, closed stream, client disconnect, a refusal mid-stream)
cancels its future; the task on the engine loop is cancelled, vLLM's request generator is
closed, and vLLM aborts the request before its next step.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import itertools
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from shared.engine import memory as memory_figures
from shared.engine import streaming
from shared.engine.base import Engine, EngineInfo, Generation, GenerationParams, Message
from shared.engine.devices import pick_device, pick_dtype
from shared.engine.model_source import ModelSource, source_for
from shared.engine.tokenize import PromptTokenizer, TokenCounting
from shared.engine.vllm_engine import config
from shared.engine.vllm_engine.runtime import EngineLoop
from shared.engine.vllm_engine.stats import EngineStats, logger_class
from shared.engine.vllm_engine.weights import weight_facts
from shared.errors import EngineError, EngineNotLoaded, EngineTimeout, Overloaded
from shared.settings import Settings

log = logging.getLogger(__name__)


class VllmEngine(TokenCounting, Engine):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._source: ModelSource = source_for(settings)
        self._lock = threading.Lock()  # load, restart and unload, one at a time
        self._runtime: EngineLoop | None = None
        self._llm: Any = None
        self._tokens: PromptTokenizer | None = None
        self._backend: Any = None  # the tokenizers.Tokenizer ReplyText decodes with
        self._device = "cpu"
        self._context = settings.max_context_tokens
        self._facts: dict[str, Any] = {}
        self._stats = EngineStats()
        self._ids = itertools.count()
        self._live = 0  # requests submitted and not yet finished (admission: MAX_QUEUE)
        self._live_lock = threading.Lock()
        self._fault: str | None = None
        self._wanted = False  # load() was asked for and unload() was not: a failed restart is retried
        self._start_error: str | None = None
        self._processes: set[int] = set()
        self._exit_hooked = False
        self.restarts = 0

    # ---- lifecycle -----------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._llm is not None

    @property
    def problem(self) -> str | None:
        llm = self._llm
        if llm is not None and llm.errored:
            return self._fault or "the vLLM engine core stopped"
        if llm is None and self._wanted and self._start_error:
            return self._start_error  # the next job tries to start it again
        return None

    def load(self) -> float:
        with self._lock:
            if self._llm is not None:
                return 0.0
            self._wanted = True
            spent = self._start()
            if not self._exit_hooked:
                # vLLM's engine core is its own process and does not always end with ours: a worker
                # that exits (SIGTERM under the RunPod SDK or uvicorn, --test_input) shuts it down.
                atexit.register(self.unload)
                self._exit_hooked = True
            return spent

    def _start(self) -> float:
        """Starts the engine core (vLLM spawns it as its own process) on a fresh engine loop."""
        from transformers import AutoTokenizer

        started = time.perf_counter()
        device = pick_device(self._settings)
        directory = config.model_directory(self._source, self._settings.model_cache_dir)
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        tokens = PromptTokenizer(tokenizer)
        native = _native_context(directory)
        context = min(self._settings.max_context_tokens, native) if native else self._settings.max_context_tokens
        dtype = str(pick_dtype(self._settings, device)).removeprefix("torch.")
        args = config.engine_args(self._settings, directory, device, dtype, context)
        runtime = EngineLoop()
        runtime.start()
        before = _children()
        try:
            llm = runtime.call(self._create(args))
        except Exception as exc:
            runtime.stop()
            _end(_children() - before)
            raise EngineError(f"the vLLM engine could not start: {type(exc).__name__}: {exc}") from exc
        import vllm

        cache = llm.vllm_config.cache_config
        self._facts = {
            "engine": "vllm",
            "vllm_version": vllm.__version__,
            "dtype": dtype,
            "enforce_eager": config.eager(self._settings, device),
            "max_num_seqs": config.max_num_seqs(self._settings),
            "kv_cache_blocks": cache.num_gpu_blocks,
            "kv_block_size": cache.block_size,
            "kv_cache_tokens": (cache.num_gpu_blocks or 0) * cache.block_size,
            "prefix_caching": bool(cache.enable_prefix_caching),
            "model_directory": str(directory),
            **weight_facts(directory),
        }
        self._tokens, self._backend = tokens, tokenizer.backend_tokenizer
        self._device, self._context, self._runtime, self._fault = device, context, runtime, None
        self._llm = llm
        self._processes = _children() - before  # vLLM's engine core (and its workers) this start made
        self._facts["ready_s"] = round(time.perf_counter() - started, 3)
        log.info(
            "vLLM engine ready in %.1fs on %s (%s tokens of KV)",
            self._facts["ready_s"],
            device,
            self._facts["kv_cache_tokens"],
        )
        return float(self._facts["ready_s"])

    async def _create(self, args: Any) -> Any:
        """Runs on the engine loop: AsyncLLM is made inside the loop that serves it."""
        from vllm.v1.engine.async_llm import AsyncLLM

        return AsyncLLM.from_engine_args(args, stat_loggers=[logger_class(self._stats)])

    def unload(self) -> None:
        with self._lock:
            self._wanted = False
            self._stop()

    def _stop(self) -> None:
        llm, runtime = self._llm, self._runtime
        self._llm = self._runtime = None
        self._tokens = None
        if llm is not None and runtime is not None:
            try:
                runtime.call(_shutdown(llm), timeout=60)
            except Exception as exc:  # noqa: BLE001 - a dead core may fail its own shutdown; we stop anyway
                log.warning("vLLM shutdown failed (%s); ending its processes", type(exc).__name__)
        if runtime is not None:
            runtime.stop()
        # Whatever vLLM's shutdown left running of the processes this engine started (seen once after
        # a restart: an engine core outliving its frontend) ends here.
        _end(self._processes)
        self._processes = set()
        del llm
        gc.collect()  # AsyncLLM's reference cycles go now, not in a __del__ at interpreter exit
        memory_figures.free_cuda_cache()

    async def _ready(self) -> tuple[Any, EngineLoop, PromptTokenizer]:
        """The running engine; a dead engine core is replaced first (off the caller's loop)."""
        llm, runtime, tokens = self._llm, self._runtime, self._tokens
        if llm is None and self._wanted:  # an earlier restart failed: try again
            await asyncio.to_thread(self._restart, None)
            llm, runtime, tokens = self._llm, self._runtime, self._tokens
        if llm is None or runtime is None or tokens is None:
            raise EngineNotLoaded("the model is not loaded")
        if llm.errored:
            await asyncio.to_thread(self._restart, llm)
            llm, runtime, tokens = self._llm, self._runtime, self._tokens
            if llm is None or runtime is None or tokens is None:
                raise EngineNotLoaded("the model is not loaded")
        return llm, runtime, tokens

    def _restart(self, dead: Any) -> None:
        with self._lock:
            if self._llm is not dead or not self._wanted:  # another caller restarted it, or it was unloaded
                return
            log.warning("vLLM engine (%s): restarting", self.problem or "not running")
            self._stop()
            try:
                self._start()
            except EngineError as exc:
                self._start_error = exc.message
                log.error("vLLM engine restart failed: %s", exc.message)
                raise
            self._start_error = None
            self.restarts += 1

    # ---- tokens --------------------------------------------------------------
    @property
    def context_length(self) -> int:
        return self._context

    # ---- generation ------------------------------------------------------------
    async def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        return await self._request(messages, params, None)

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[str | Generation]:
        """Text deltas as vLLM decodes them (held back where a stop string may start), then the
        final Generation; a consumer that stops iterating aborts the request."""
        holder: list[asyncio.Future[Generation]] = []

        def gone() -> None:  # the consumer's loop closed under the stream: stop generating for it
            for task in holder:
                task.cancel()

        feed = streaming.TextFeed(asyncio.get_running_loop(), gone)
        task = asyncio.ensure_future(self._request(messages, params, feed))
        holder.append(task)
        async for item in streaming.deltas(feed, task):
            yield item

    async def _request(
        self, messages: list[Message], params: GenerationParams, on_text: Callable[[str], None] | None
    ) -> Generation:
        llm, runtime, tokens = await self._ready()
        # Tokenizing a long prompt takes milliseconds: off the event loop, as in the other engine.
        ids = await asyncio.to_thread(tokens.prompt_ids, messages)
        result: Generation = await self._submit(runtime, self._run(llm, ids, params, on_text))
        return result

    async def _submit(self, runtime: EngineLoop, work: Any) -> Any:
        """Admission (MAX_QUEUE beyond what vLLM decodes at once), the time limit, and
        cancellation: the caller's future going away cancels the request's task there."""
        limit = config.max_num_seqs(self._settings) + self._settings.max_queue
        with self._live_lock:
            if self._live >= limit:
                work.close()
                raise Overloaded(f"{self._live} generations are already running or waiting; try again shortly")
            self._live += 1
        try:
            timeout = self._settings.generation_timeout_s
            try:
                return await asyncio.wait_for(runtime.submit(work), timeout)
            except TimeoutError:
                raise EngineTimeout(f"generation exceeded {timeout:.0f}s") from None
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # our caller gave up: the request was aborted on the way
                # The engine loop ended the request itself (unload, restart): the caller is still
                # waiting for an answer, and a bare CancelledError would leave its job without one.
                raise EngineError("the engine stopped while generating") from None
        finally:
            with self._live_lock:
                self._live -= 1

    async def _run(
        self, llm: Any, ids: list[int], params: GenerationParams, on_text: Callable[[str], None] | None
    ) -> Generation:
        """Runs on the engine loop: one vLLM request, its token ids fed to the shared ReplyText."""
        from vllm.inputs import TokensPrompt

        reply = streaming.ReplyText(self._backend, params.stop, on_text)
        try:
            sampling = config.sampling(params, narrow=config.narrows(self._device))
            request = llm.generate(TokensPrompt(prompt_token_ids=ids), sampling, request_id=self._id())
            async with contextlib.aclosing(request) as outputs:  # leaving early aborts the request
                async for out in outputs:
                    choice = out.outputs[0]
                    new = list(choice.token_ids)
                    if out.finished and choice.finish_reason == "stop" and not isinstance(choice.stop_reason, str):
                        new = new[:-1]  # the EOS (or stop token) itself is not part of the reply
                    for token in new:
                        reply.push(token, params.max_tokens)
                        if reply.ended:
                            break
                    if reply.ended:
                        break
                    if out.finished:
                        if choice.finish_reason in {"abort", "error"}:  # vLLM ended it, not the model
                            raise EngineError(f"vLLM ended the request ({choice.finish_reason})")
                        reply.end("length" if choice.finish_reason == "length" else "stop")
        except (asyncio.CancelledError, EngineError):
            raise
        except Exception as exc:
            raise self._engine_error(exc) from exc
        reply.end("length")  # a no-op unless vLLM ended without saying why
        return reply.result(len(ids))

    async def judge(self, messages: list[Message], answers: tuple[str, str] = ("yes", "no")) -> float:
        llm, runtime, tokens = await self._ready()
        first, second = tokens.encode(answers[0])[:1], tokens.encode(answers[1])[:1]
        if not first or not second or first == second:
            raise EngineError(f"answers {answers!r} need distinct first tokens")
        ids = await asyncio.to_thread(tokens.prompt_ids, messages)
        odds: float = await self._submit(runtime, self._judge(llm, ids, first[0], second[0]))
        return odds

    async def _judge(self, llm: Any, ids: list[int], first: int, second: int) -> float:
        """Runs on the engine loop: P(first) from the two answers' log-probabilities."""
        from vllm.inputs import TokensPrompt

        final = None
        try:
            async for out in llm.generate(
                TokensPrompt(prompt_token_ids=ids), config.judging(first, second), request_id=self._id("judge")
            ):
                final = out
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self._engine_error(exc) from exc
        steps = final.outputs[0].logprobs if final is not None else None
        if not steps:
            raise EngineError("vLLM returned no log-probabilities for the judge")
        picked = steps[0]
        if first not in picked or second not in picked:
            raise EngineError("vLLM did not return both answers' log-probabilities")
        diff = picked[first].logprob - picked[second].logprob  # = the logits' difference
        # P(first) = sigmoid(diff), written so exp never overflows
        return 1.0 / (1.0 + math.exp(-diff)) if diff >= 0 else math.exp(diff) / (1.0 + math.exp(diff))

    def _id(self, kind: str = "gen") -> str:
        return f"{kind}-{next(self._ids)}"

    def _engine_error(self, exc: Exception) -> EngineError:
        from vllm.v1.engine.exceptions import EngineDeadError

        # The cause chain's types and traceback, never its message (it may quote the prompt).
        causes: list[str] = []
        seen: BaseException | None = exc
        while seen is not None and len(causes) < 5:
            causes.append(type(seen).__name__)
            seen = seen.__cause__ or seen.__context__
        log.error("vLLM request failed: %s", " <- ".join(causes))
        if isinstance(exc, EngineDeadError) or (self._llm is not None and self._llm.errored):
            self._fault = f"the vLLM engine core stopped: {type(exc).__name__}"
            return EngineError(self._fault)
        return EngineError(f"generation failed: {type(exc).__name__}")

    # ---- facts -------------------------------------------------------------------
    def info(self) -> EngineInfo:
        import torch

        cuda = torch.cuda.is_available()
        loaded = self._llm is not None
        facts: dict[str, Any] = dict(self._facts) if loaded else {"engine": "vllm"}
        with self._live_lock:
            live = self._live
        llm = self._llm
        facts["scheduler"] = {
            **self._stats.figures(),
            "in_flight": live,
            # requests vLLM still tracks (an aborted one leaves at once; a finished one on its last output)
            "engine_unfinished": llm.output_processor.get_num_unfinished_requests() if llm is not None else 0,
            "restarts": self.restarts,
            "fault": self.problem,
        }
        return EngineInfo(
            model_loaded=loaded,
            model_path=str(self._source.directory / (self._source.gguf_file or "")).rstrip("/"),
            model_name=self._source.label,
            model_device=self._device,
            device_type=self._device,
            model_parameters=int(facts.get("parameters", 0)),
            model_size_gb=float(facts.get("weights_gb", 0.0)),
            is_eval_mode=loaded,
            torch_version=torch.__version__,
            cuda_available=cuda,
            cuda_version=torch.version.cuda,
            # only where this process already has a CUDA context: vLLM's engine core owns the card
            gpu_name=torch.cuda.get_device_name(0) if cuda and torch.cuda.is_initialized() else None,
            context_length=self.context_length,
            extra=facts,
        )

    def memory(self) -> dict[str, Any]:
        # Host figures only: the card's memory is vLLM's (its KV pool below); asking torch here
        # would open a CUDA context in this process, outside vLLM's budget.
        out = memory_figures.snapshot("host", None)
        out["device_type"] = out["model_device"] = self._device
        loaded = self._llm is not None
        out["model_loaded"] = loaded
        out["model_weights_gb"] = self._facts.get("weights_gb") if loaded else 0.0
        figures = self._stats.figures()
        out["engine"] = "vllm"
        out["kv_cache_tokens"] = self._facts.get("kv_cache_tokens") if loaded else None
        out["kv_cache_usage"] = figures["kv_cache_usage"]
        out["prefix_cache_hit_rate"] = figures["prefix_cache"]["hit_rate"]
        return out


async def _shutdown(llm: Any) -> None:
    llm.shutdown()
    # Shut down once, here: AsyncLLM.__del__ calls shutdown() again whenever the object is finally
    # collected, at interpreter exit that is against half-torn-down modules (a TypeError printed
    # as "Exception ignored"). The instance attribute makes that second call a no-op.
    llm.shutdown = lambda *args, **kwargs: None


def _native_context(directory: Any) -> int | None:
    import json
    from pathlib import Path

    try:
        cfg = json.loads((Path(directory) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    value = cfg.get("max_position_embeddings")
    return int(value) if isinstance(value, int) else None


def _children() -> set[int]:
    import psutil

    return {p.pid for p in psutil.Process().children(recursive=True)}


def _end(pids: set[int], wait_s: float = 10.0) -> None:
    """Terminate (then kill) these processes if they are still alive."""
    import psutil

    alive = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            proc.terminate()
            alive.append(proc)
    _, left = psutil.wait_procs(alive, timeout=wait_s)
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.kill()
