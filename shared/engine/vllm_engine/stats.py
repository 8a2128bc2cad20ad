"""What vLLM's own scheduler reports (KV pool use, prefix-cache hits, running/waiting
requests), kept for `model_info` and `memory_status`.

vLLM hands `SchedulerStats` to every stat logger after each engine step; ours keeps the
latest figures and adds up the prefix-cache counters. vLLM calls its stat-logger classes
SchedulerStats "not a stable interface": every read here is by name with a default."""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)


class EngineStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.kv_cache_usage = 0.0
        self.running = 0
        self.waiting = 0
        self.prefix_queries = 0
        self.prefix_hits = 0
        self.steps = 0
        self.tokens_generated = 0

    def record_iteration(self, iteration: Any) -> None:
        with self._lock:
            self.tokens_generated += int(getattr(iteration, "num_generation_tokens", 0) or 0)

    def record(self, scheduler: Any) -> None:
        prefix = getattr(scheduler, "prefix_cache_stats", None)
        with self._lock:
            self.steps += 1
            self.kv_cache_usage = float(getattr(scheduler, "kv_cache_usage", 0.0) or 0.0)
            self.running = int(getattr(scheduler, "num_running_reqs", 0) or 0)
            self.waiting = int(getattr(scheduler, "num_waiting_reqs", 0) or 0)
            if prefix is not None:
                self.prefix_queries += int(getattr(prefix, "queries", 0) or 0)
                self.prefix_hits += int(getattr(prefix, "hits", 0) or 0)

    def figures(self) -> dict[str, Any]:
        with self._lock:
            rate = self.prefix_hits / self.prefix_queries if self.prefix_queries else 0.0
            return {
                "kv_cache_usage": round(self.kv_cache_usage, 4),
                "running": self.running,
                "waiting": self.waiting,
                "tokens_generated": self.tokens_generated,
                "prefix_cache": {
                    "queried_tokens": self.prefix_queries,
                    "hit_tokens": self.prefix_hits,
                    "hit_rate": round(rate, 4),
                },
            }


def logger_class(stats: EngineStats) -> Any:
    """A vLLM stat-logger class (vLLM instantiates it per engine) that feeds `stats`."""
    from vllm.v1.metrics.loggers import StatLoggerBase

    class Recorder(StatLoggerBase):
        def __init__(self, vllm_config: Any, engine_index: int = 0) -> None:
            pass

        def record(
            self, scheduler_stats: Any, iteration_stats: Any, mm_cache_stats: Any = None, engine_idx: int = 0
        ) -> None:
            # An exception here would reach vLLM's output handler and fail every request in flight:
            # figures are not worth that.
            try:
                if scheduler_stats is not None:
                    stats.record(scheduler_stats)
                if iteration_stats is not None:
                    stats.record_iteration(iteration_stats)
            except Exception:
                log.warning("could not read vLLM's stats", exc_info=True)

        def log_engine_initialized(self) -> None:
            pass

    return Recorder
