"""Fitting a conversation into the context window: oldest turns go first, the newest
message is never cut."""

from __future__ import annotations

from dataclasses import dataclass

from shared.engine import Engine, Message
from shared.errors import ContextOverflow


@dataclass(frozen=True)
class FittedPrompt:
    messages: list[Message]
    prompt_tokens: int
    history_used: int
    history_dropped: int


def fit_history(
    engine: Engine, system: str | None, history: list[Message], message: str, max_tokens: int
) -> FittedPrompt:
    """Keep the longest recent suffix of `history` whose rendered prompt leaves room for the reply."""
    budget = engine.context_length - max_tokens
    head = [Message("system", system)] if system else []
    tail = [Message("user", message)]

    def tokens(start: int) -> int:
        return engine.count_chat_tokens(head + history[start:] + tail)

    alone = tokens(len(history))
    if alone > budget:
        raise ContextOverflow(
            f"the message needs {alone} prompt tokens but only {max(budget, 0)} fit the "
            f"{engine.context_length}-token context with max_tokens={max_tokens}",
            field="message",
        )
    # Token counts only shrink as the start moves later: binary search the earliest start that fits.
    lo, hi = 0, len(history)
    while lo < hi:
        mid = (lo + hi) // 2
        if tokens(mid) <= budget:
            hi = mid
        else:
            lo = mid + 1
    kept = history[lo:]
    return FittedPrompt(head + kept + tail, tokens(lo) if lo < len(history) else alone, len(kept), lo)
