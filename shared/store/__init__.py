"""Stores for conversations and the enhancement cache."""

from shared.store.base import CacheStats, Store, StoreHealth, Turn
from shared.store.memory import MemoryStore

__all__ = ["CacheStats", "MemoryStore", "Store", "StoreHealth", "Turn"]
