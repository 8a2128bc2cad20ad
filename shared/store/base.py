"""The store contract: conversation turns and the enhancement cache.

Two implementations: in-process (the embedded default) and Upstash Redis (shared by
every worker). Services receive a Store; they never build one.
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Turn:
    role: Literal["user", "assistant"]
    content: str
    at: float = 0.0  # unix seconds

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        role = data.get("role")
        if role not in ("user", "assistant") or not isinstance(data.get("content"), str):
            raise ValueError("malformed turn")
        return cls(role, data["content"], float(data.get("at") or 0.0))


@dataclass
class CacheStats:
    size: int
    hits: int
    misses: int


@dataclass
class StoreHealth:
    backend: str
    shared: bool
    ok: bool = True
    warning: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Store(abc.ABC):
    backend = "abstract"

    # ---- conversations -------------------------------------------------------
    @abc.abstractmethod
    async def append_turns(self, conversation_id: str, turns: list[Turn]) -> None:
        """Append atomically; trims the oldest beyond the bound and refreshes the TTL."""

    @abc.abstractmethod
    async def get_turns(self, conversation_id: str, limit: int) -> list[Turn]:
        """The last `limit` turns, oldest first."""

    @abc.abstractmethod
    async def delete_conversation(self, conversation_id: str) -> bool: ...

    # ---- enhancement cache ---------------------------------------------------
    @abc.abstractmethod
    async def cache_get(self, key: str) -> dict[str, Any] | None:
        """A cached body or None; counts a hit or a miss."""

    @abc.abstractmethod
    async def cache_put(self, key: str, value: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    async def cache_clear(self) -> int:
        """Remove every cached entry; return how many there were."""

    @abc.abstractmethod
    async def cache_stats(self) -> CacheStats: ...

    @abc.abstractmethod
    def health(self) -> StoreHealth: ...
