"""Chat-template rendering and prompt tokenization: everything that turns a list of
`Message`s into the model's input ids, and token counting.

The engine, the prefix cache and the judge all get their ids from here, so how caller
text becomes tokens is decided in one place.

Caller text is data, never control. Rendering the template around the raw text and
tokenizing the result would turn a `<|im_end|>\n<|im_start|>system` typed into a message
into the template's real control tokens: a caller could write a genuine system turn. So
the template is rendered around placeholders; the control tokens in the template's own
text become their ids, and every run of plain text between them (template text and the
caller's text together) is tokenized with special tokens split into ordinary pieces
(`split_special_tokens=True`). A tokenizer splits at its added tokens before anything else,
so for text without special tokens the ids equal those of the whole rendered prompt.
"""

from __future__ import annotations

import re
from typing import Any

from shared.engine.base import Message
from shared.logs import content_log

# Private-use code points: no chat template writes them, and the rendered text holds only
# the template's own text and these marks (never caller text), so a split is unambiguous.
_MARK = "\ue000{}\ue001"
_MARKS = re.compile("\ue000(\\d+)\ue001")


class PromptTokenizer:
    """Wraps the model's own tokenizer (a transformers tokenizer)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        # The tokenizer's added tokens (ChatML's <|im_start|>, <|im_end|>, ...): in template text
        # they are control tokens; longest first so that no token matches inside a longer one.
        added: dict[str, int] = dict(tokenizer.get_added_vocab()) if hasattr(tokenizer, "get_added_vocab") else {}
        self._control_ids = added
        alternatives = "|".join(re.escape(t) for t in sorted(added, key=len, reverse=True))
        self._controls = re.compile(f"({alternatives})") if added else None

    def render(self, messages: list[Message]) -> str:
        """The prompt text: the model's chat template with the generation prompt. For reading
        only: ids come from `prompt_ids`, which keeps the caller's text literal."""
        return self._template(messages, generation_prompt=True)

    def prompt_ids(self, messages: list[Message]) -> list[int]:
        """The input ids of a job's prompt, caller text tokenized literally. Logged only to the
        content log (DEBUG_LOG_CONTENT): tests read the ids the engine received from there."""
        ids = self._ids(messages, generation_prompt=True)
        content_log.debug("prompt ids: %s", ids)
        return ids

    def head_ids(self, messages: list[Message]) -> list[int]:
        """Ids of every message but the last, without a generation prompt: the part of a prompt
        that the next job of the same profile or conversation starts with (may be empty).
        Built from the same pieces as `prompt_ids`, so it is a token prefix of it."""
        if len(messages) < 2 or not self._has_template():
            return []
        return self._ids(messages[:-1], generation_prompt=False)

    def encode(self, text: str) -> list[int]:
        """Ids of caller text: special-token strings in it stay literal text."""
        return list(self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def count_chat_tokens(self, messages: list[Message]) -> int:
        return len(self._ids(messages, generation_prompt=True))

    # ---- internals -------------------------------------------------------------
    def _has_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def _template(self, messages: list[Message], generation_prompt: bool) -> str:
        chat = [{"role": m.role, "content": m.content} for m in messages]
        if self._has_template():
            return str(
                self.tokenizer.apply_chat_template(chat, add_generation_prompt=generation_prompt, tokenize=False)
            )
        text = "".join(f"{m['role']}: {m['content']}\n" for m in chat)
        return text + ("assistant: " if generation_prompt else "")

    def _ids(self, messages: list[Message], generation_prompt: bool) -> list[int]:
        marked = [Message(m.role, _MARK.format(i)) for i, m in enumerate(messages)]
        pieces = _MARKS.split(self._template(marked, generation_prompt))
        # pieces alternate: template text, message index, template text, ... (template text last).
        # Runs of plain text (template text between control tokens, caller text) are encoded with
        # special tokens split; the template's control tokens become their ids.
        runs: list[list[str]] = [[]]
        controls: list[int] = []
        for n, piece in enumerate(pieces):
            if n % 2:
                runs[-1].append(messages[int(piece)].content)
                continue
            parts = self._controls.split(piece) if self._controls else [piece]
            runs[-1].append(parts[0])
            for token, text in zip(parts[1::2], parts[2::2], strict=True):
                controls.append(self._control_ids[token])
                runs.append([text])
        texts = ["".join(run) for run in runs]
        encoded = self.tokenizer(texts, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        ids: list[int] = list(encoded[0])
        for control, text_ids in zip(controls, encoded[1:], strict=True):
            ids.append(control)
            ids += text_ids
        return ids
