"""Fitting a conversation into the context window in whole exchanges.

The model sees: the system prompt, then user/assistant exchanges (oldest dropped first,
a question never without its answer), then the new message, which is never cut.

History is repaired, never rejected (docs/STATE.md, "History the model sees"):
- consecutive turns of one role are joined into one turn, separated by a blank line;
- assistant turns before the first user turn are dropped (the model sees a question first);
- a trailing user turn with no answer is joined to the front of the new message.
So any chat template that demands strict user/assistant alternation accepts the prompt.

Tokens are counted once per turn, newest first, and only until the budget is spent; one
exact count of the chosen prompt confirms it. The transformers engine keeps the ids of each
text it tokenized (shared/engine/tokenize.py): its prompt ids for the job then reuse this
count's work, and a conversation's stored turns are tokenized by its first request that sees
them, not by every later one. The whole function is synchronous and meant to run off the
event loop (`asyncio.to_thread`): tokenizing a large history takes seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.engine import Engine, Message
from shared.errors import ContextOverflow

Exchange = tuple[Message, Message]


@dataclass(frozen=True)
class FittedPrompt:
    messages: list[Message]
    prompt_tokens: int
    history_used: int  # turns kept
    history_dropped: int  # turns left out to fit (the oldest exchanges)


def exchanges(history: list[Message], message: str) -> tuple[list[Exchange], str]:
    """Repair `history` into user/assistant pairs (rules above); returns the pairs and the new message."""
    merged: list[Message] = []
    for turn in history:
        if turn.role not in ("user", "assistant"):
            continue
        if merged and merged[-1].role == turn.role:
            merged[-1] = Message(turn.role, f"{merged[-1].content}\n\n{turn.content}")
        elif merged or turn.role == "user":
            merged.append(turn)
    if merged and merged[-1].role == "user":
        message = f"{merged.pop().content}\n\n{message}"
    pairs = [(merged[i], merged[i + 1]) for i in range(0, len(merged), 2)]
    return pairs, message


def fit_history(
    engine: Engine, system: str | None, history: list[Message], message: str, max_tokens: int
) -> FittedPrompt:
    """Keep the most recent whole exchanges whose prompt leaves room for `max_tokens` of reply."""
    pairs, message = exchanges(history, message)
    budget = engine.context_length - max_tokens
    head = [Message("system", system)] if system else []
    tail = [Message("user", message)]
    base = engine.count_chat_tokens(head + tail)
    if base > budget:
        raise _overflow(engine, head, base, budget, max_tokens)
    # Template tokens an exchange adds beyond its text, measured once on a tiny exchange.
    probe = [Message("user", "x"), Message("assistant", "x")]
    overhead = engine.count_chat_tokens(head + probe + tail) - base - 2 * engine.count_tokens("x")
    used, start = base, len(pairs)
    while start > 0:
        user, reply = pairs[start - 1]
        cost = engine.count_tokens(user.content) + engine.count_tokens(reply.content) + overhead
        if used + cost > budget:
            break
        used, start = used + cost, start - 1
    while True:  # the estimate can miss by a token where texts meet; confirm, drop one more if needed
        kept = [m for pair in pairs[start:] for m in pair]
        exact = engine.count_chat_tokens(head + kept + tail) if kept else base
        if exact <= budget or not kept:
            break
        start += 1
    return FittedPrompt(head + kept + tail, exact, len(kept), 2 * start)


def _overflow(engine: Engine, head: list[Message], base: int, budget: int, max_tokens: int) -> ContextOverflow:
    """Name the part that does not fit: the system prompt on its own, else the message."""
    alone = engine.count_chat_tokens([*head, Message("user", "")]) if head else 0
    field = "system_prompt" if head and alone > budget else "message"
    return ContextOverflow(
        f"the {field.replace('_', ' ')} needs {alone if field == 'system_prompt' else base} prompt tokens but "
        f"only {max(budget, 0)} fit the {engine.context_length}-token context with max_tokens={max_tokens}",
        field=field,
    )
