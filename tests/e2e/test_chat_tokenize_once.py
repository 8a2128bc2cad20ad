"""A stateful chat tokenizes each text once: not again for the engine's ids after the history
was fitted, and not again for the stored turns of later requests. Counted on the embedded
model's real tokenizer, wrapped, through the handler."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from handler.app import Worker
from shared.engine.hf_engine import TransformersEngine
from shared.settings import load_settings

MESSAGES = [
    "Hi! I'm planning a walking trip in spring.",
    "I like mountains more than beaches.",
    "How long should I stay on Madeira?",
    "What should I pack for the levadas?",
    "Any tips for food near the trails?",
]
pytestmark = pytest.mark.model


class RecordingTokenizer:
    """The real tokenizer; every text it is asked to encode is recorded."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.texts: list[str] = []

    def __call__(self, text: str | list[str], **kwargs: Any) -> Any:
        self.texts += [text] if isinstance(text, str) else text
        return self.real(text, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_stateful_chat_tokenizes_each_text_once() -> None:
    engine = TransformersEngine(load_settings(prefix_cache_entries=8))
    engine.load()
    tokens = engine._require_tokens()
    recorder = tokens.tokenizer = RecordingTokenizer(tokens.tokenizer)
    worker = Worker(load_settings(), engine)
    per_request: list[list[str]] = []
    turns: list[str] = []  # every stored turn's text, oldest first

    async def chat(message: str) -> dict[str, Any]:
        payload = {"action": "chat", "message": message, "conversation_id": "once", "max_tokens": 12, "temperature": 0}
        return await worker.handle({"input": payload})

    for n, message in enumerate(MESSAGES):
        recorder.texts.clear()
        out = asyncio.run(chat(message))
        assert out["success"] is True and out["history_turns_used"] == 2 * n, out
        per_request.append(list(recorder.texts))
        assert per_request[-1], "the new message was tokenized"
        # turns stored before the previous exchange are neither counted nor encoded again
        assert not [t for t in turns[:-2] for text in per_request[-1] if t in text]
        turns += [t for t in (message, out["response"]) if len(t) >= 12]  # long enough to be found only as itself
    encoded = Counter(text for texts in per_request for text in texts)
    assert [text for text, times in encoded.items() if times > 1] == []  # no text tokenized twice
    # each turn at most twice: on its own (the fitter's per-turn count) and inside its template run
    assert max(sum(turn in text for text in encoded) for turn in turns) <= 2
