"""What every action receives: the services and the worker's own counters."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.chat import ChatService
from shared.engine import Engine
from shared.policy import ContentPolicy
from shared.settings import Settings
from shared.store import Store

if TYPE_CHECKING:
    from shared.enhance import EnhanceService


@dataclass
class Stats:
    started_at: float = field(default_factory=time.time)
    jobs_served: int = 0
    jobs_failed: int = 0
    warmed_up: bool = False
    load_time_s: float | None = None


@dataclass
class WorkerContext:
    settings: Settings
    engine: Engine
    store: Store
    policy: ContentPolicy
    chat: ChatService
    enhance: EnhanceService
    stats: Stats = field(default_factory=Stats)
