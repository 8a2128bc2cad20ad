"""The store contract: conversation turns and the enhancement cache.

Two implementations: in-process (the embedded default) and Upstash Redis (shared by
every worker). Services receive a Store; they never build one.

Conversations live in a namespace (the caller's user, else project, else the default
one): a job reads and appends only its own namespace's conversation with that id.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeVar

DEFAULT_NAMESPACE = "default"
T = TypeVar("T")


def conversation_namespace(user_id: str | None, project_id: str | None) -> str:
    """The namespace a conversation id lives in: per user when known, else per project, else shared.

    The kind is part of the name, so a user and a project with the same id never meet.
    """
    if user_id:
        return f"user:{user_id}"
    if project_id:
        return f"project:{project_id}"
    return DEFAULT_NAMESPACE


def new_turn_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Turn:
    role: Literal["user", "assistant"]
    content: str
    at: float = 0.0  # unix seconds; the order of exchanges across workers
    id: str = field(default_factory=new_turn_id)  # written once: a re-sent turn with a known id is skipped

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        role = data.get("role")
        if role not in ("user", "assistant") or not isinstance(data.get("content"), str):
            raise ValueError("malformed turn")
        return cls(role, data["content"], float(data.get("at") or 0.0), str(data.get("id") or new_turn_id()))


def whole_exchanges(turns: list[Turn], limit: int) -> list[Turn]:
    """The last `limit` turns, less any leading assistant turns: history starts with a question."""
    kept = turns[-limit:] if limit > 0 else []
    start = 0
    while start < len(kept) and kept[start].role != "user":
        start += 1
    return kept[start:]


@dataclass
class StoredHistory:
    turns: list[Turn]
    warning: str | None = None  # e.g. the shared store came back holding less than this worker had


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
    async def append_turns(self, namespace: str, conversation_id: str, turns: list[Turn]) -> None:
        """Append whole exchanges atomically; trims the oldest exchanges beyond the bound, refreshes the TTL."""

    @abc.abstractmethod
    async def get_turns(self, namespace: str, conversation_id: str, limit: int) -> StoredHistory:
        """At most the last `limit` turns, oldest first, starting with a user turn."""

    @abc.abstractmethod
    async def delete_conversation(self, namespace: str, conversation_id: str) -> bool:
        """Whether there was something to delete; a shared store that cannot confirm the delete
        raises StoreUnavailable (after dropping what this worker holds)."""

    # ---- enhancement cache ---------------------------------------------------
    @abc.abstractmethod
    async def cache_get(self, key: str, read: Callable[[dict[str, Any]], T | None]) -> T | None:
        """`read` of the cached body, or None; counts a hit or a miss. A body that `read` cannot
        use (another format, damaged: it answers None) is a miss in the stats, like an absent one."""

    @abc.abstractmethod
    async def cache_put(self, key: str, value: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    async def cache_clear(self) -> int:
        """Remove every cached entry; return how many there were."""

    @abc.abstractmethod
    async def cache_stats(self) -> CacheStats: ...

    # ---- health ----------------------------------------------------------------
    @abc.abstractmethod
    def health(self) -> StoreHealth: ...

    @property
    def probed(self) -> bool:
        """Whether the backend has been checked at least once (health probes it otherwise)."""
        return True

    async def probe(self) -> None:
        """Check the backend now; the result shows in `health()`. In-process state needs no check."""
        return None

    def check_at_start(self) -> None:
        """Probe once at start-up, before the first job (called outside any event loop)."""
        return None

    async def close(self, grace_s: float) -> int:
        """At shutdown: write what waits for the backend within `grace_s`; the turns left unwritten.
        In-process state has nothing to write (and is gone with the process)."""
        return 0
