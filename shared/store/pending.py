"""Turns a worker holds for the shared store until it answers: bounded, in order, per conversation."""

from __future__ import annotations

import logging
from collections import OrderedDict

from shared.store.base import Turn

log = logging.getLogger(__name__)
ConversationKey = tuple[str, str]  # (namespace, conversation id)


class PendingTurns:
    """A write-back queue. A flush peeks a batch and removes exactly the turns it wrote (by id),
    so turns added while the write is in flight stay for the next one. Past `limit` turns the
    oldest exchanges are dropped, counted and logged: a store that never returns cannot grow it forever.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._turns: OrderedDict[ConversationKey, list[Turn]] = OrderedDict()  # oldest conversation first
        self.total = 0
        self.dropped = 0

    def add(self, key: ConversationKey, turns: list[Turn]) -> None:
        self._turns.setdefault(key, []).extend(turns)
        self.total += len(turns)
        while self.total > self.limit and self._turns:
            self._drop_oldest_exchange()

    def peek(self, key: ConversationKey) -> list[Turn]:
        return list(self._turns.get(key, ()))

    def conversations(self) -> list[ConversationKey]:
        return list(self._turns)

    def remove(self, key: ConversationKey, written: list[Turn]) -> None:
        ids = {t.id for t in written}
        held = self._turns.get(key)
        if held is None:
            return
        kept = [t for t in held if t.id not in ids]
        self.total -= len(held) - len(kept)
        if kept:
            self._turns[key] = kept
        else:
            del self._turns[key]

    def discard(self, key: ConversationKey) -> None:
        self.total -= len(self._turns.pop(key, []))

    def _drop_oldest_exchange(self) -> None:
        key, held = next(iter(self._turns.items()))
        cut = 1
        while cut < len(held) and held[cut].role != "user":  # the question with all of its answer
            cut += 1
        del held[:cut]
        self.total -= cut
        self.dropped += cut
        if not held:
            del self._turns[key]
        log.warning("write-back queue full: dropped %d oldest turns (%d dropped so far)", cut, self.dropped)
