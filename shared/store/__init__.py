"""Stores for conversations and the enhancement cache."""

from shared.store.base import (
    DEFAULT_NAMESPACE,
    CacheStats,
    Store,
    StoredHistory,
    StoreHealth,
    Turn,
    conversation_namespace,
    whole_exchanges,
)
from shared.store.memory import MemoryStore

__all__ = [
    "DEFAULT_NAMESPACE",
    "CacheStats",
    "MemoryStore",
    "Store",
    "StoreHealth",
    "StoredHistory",
    "Turn",
    "conversation_namespace",
    "whole_exchanges",
]
