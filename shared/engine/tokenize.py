"""Chat-template rendering and prompt tokenization: everything that turns a list of
`Message`s into the model's input ids, and token counting.

The engine, the prefix cache and the judge all get their ids from here, so how caller
text becomes tokens is decided in one place.
"""

from __future__ import annotations

from typing import Any

from shared.engine.base import Message


class PromptTokenizer:
    """Wraps the model's own tokenizer (a transformers tokenizer)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def render(self, messages: list[Message]) -> str:
        """The prompt text: the model's chat template with the generation prompt."""
        tok = self.tokenizer
        chat = [{"role": m.role, "content": m.content} for m in messages]
        if getattr(tok, "chat_template", None):
            return str(tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=False))
        return "".join(f"{m.role}: {m.content}\n" for m in messages) + "assistant: "

    def prompt_ids(self, messages: list[Message]) -> list[int]:
        """The input ids of the rendered prompt."""
        return self.encode(self.render(messages))

    def head_ids(self, messages: list[Message]) -> list[int]:
        """Ids of every message but the last, without a generation prompt: the part of a prompt
        that the next job of the same profile or conversation starts with (may be empty)."""
        tok = self.tokenizer
        if len(messages) < 2 or not getattr(tok, "chat_template", None):
            return []
        head = [{"role": m.role, "content": m.content} for m in messages[:-1]]
        return self.encode(str(tok.apply_chat_template(head, tokenize=False)))

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def count_chat_tokens(self, messages: list[Message]) -> int:
        return len(self.prompt_ids(messages))
