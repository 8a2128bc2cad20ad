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

Work is not repeated: one chat request counts its prompt while fitting the history, then the
engine asks for the same prompt's ids, and every request of a conversation carries the same
earlier turns. So the ids of each run of plain text are kept in a least-recently-used cache
bounded by the tokens it holds (a run is tokenized once, then looked up), and the template's
placeholder rendering, which depends only on the roles, is cached by them. Pure caches: the
ids are the same as without them.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from shared.engine.base import Message, Role
from shared.errors import EngineNotLoaded
from shared.logs import content_log

# Private-use code points: no chat template writes them, and the rendered text holds only
# the template's own text and these marks (never caller text), so a split is unambiguous.
_MARK = "\ue000{}\ue001"
_MARKS = re.compile("\ue000(\\d+)\ue001")
# What the run cache may hold, in TokenLru.weight units (an entry's tokens or its text's length
# / 4, whichever is more): dozens of long conversations (a 16,000-character turn is about 4,000
# tokens); at most about 10 MB of ids plus 1-4 MB of text. A miss costs only the tokenizing the
# cache saves.
RUN_CACHE_TOKENS = 262_144
# Runs of plain text (template text, and message indexes standing for the messages' text), and
# the control-token ids between consecutive runs.
Skeleton = tuple[tuple[tuple[str | int, ...], ...], tuple[int, ...]]


class TokenLru:
    """Token ids by text, least recently used dropped first once more than `max_tokens` are held.

    Not functools.lru_cache: its bound counts entries, and one entry may be 1 token or 4,000; and
    the misses of one prompt are tokenized together in one batched call, which it cannot do.
    Thread-safe: the fitting and the engine's tokenization of concurrent requests run in
    `asyncio.to_thread` workers at once."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self._items: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[int, ...] | None:
        with self._lock:
            ids = self._items.get(key)
            if ids is not None:
                self._items.move_to_end(key)
            return ids

    @staticmethod
    def weight(key: str, ids: tuple[int, ...]) -> int:
        """Tokens, or the text's length in 4-character units where the text is the larger part
        (one token can cover 64 repeated characters); + 1 so empty runs count too."""
        return max(len(ids), len(key) // 4) + 1

    def put(self, key: str, ids: Sequence[int]) -> tuple[int, ...]:
        kept = tuple(ids)
        weight = self.weight(key, kept)
        with self._lock:
            if weight > self.max_tokens:
                return kept
            if (old := self._items.pop(key, None)) is not None:
                self._held -= self.weight(key, old)
            self._items[key] = kept
            self._held += weight
            while self._held > self.max_tokens:
                dropped_key, dropped = self._items.popitem(last=False)
                self._held -= self.weight(dropped_key, dropped)
        return kept

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._held = 0

    @property
    def held(self) -> int:
        """Weight held: tokens or text/4, whichever is larger, + 1 per entry."""
        return self._held

    def __len__(self) -> int:
        return len(self._items)


class PromptTokenizer:
    """Wraps the model's own tokenizer (a transformers tokenizer)."""

    def __init__(self, tokenizer: Any, run_cache_tokens: int = RUN_CACHE_TOKENS) -> None:
        self.tokenizer = tokenizer  # its chat template is read at each render: set it before the first call
        self.runs = TokenLru(run_cache_tokens)  # text run -> ids: earlier turns recur in every request
        # roles -> the template's skeleton; one per conversation length and shape, a few hundred bytes
        # each. Not for a template that writes today's date (Llama 3.1's strftime_now): rendered each time.
        dated = "strftime_now" in str(getattr(tokenizer, "chat_template", None) or "")
        self._skeleton = self._make_skeleton if dated else lru_cache(maxsize=512)(self._make_skeleton)
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
        return list(self._encode_runs([text])[0])

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
        runs, controls = self._skeleton(tuple(m.role for m in messages), generation_prompt)
        texts = ["".join(p if isinstance(p, str) else messages[p].content for p in run) for run in runs]
        encoded = self._encode_runs(texts)
        ids: list[int] = list(encoded[0])
        for control, text_ids in zip(controls, encoded[1:], strict=True):
            ids.append(control)
            ids += text_ids
        return ids

    def _make_skeleton(self, roles: tuple[Role, ...], generation_prompt: bool) -> Skeleton:
        """The template rendered around placeholders, cut at its control tokens: runs of plain
        text (template text and message indexes), and the control ids between them. It depends
        only on the roles, so it is cached by them (`_skeleton`): no render per prompt."""
        marked = [Message(role, _MARK.format(i)) for i, role in enumerate(roles)]
        pieces = _MARKS.split(self._template(marked, generation_prompt))
        # pieces alternate: template text, message index, template text, ... (template text last).
        # Runs of plain text (template text between control tokens, caller text) are encoded with
        # special tokens split; the template's control tokens become their ids.
        runs: list[list[str | int]] = [[]]
        controls: list[int] = []
        for n, piece in enumerate(pieces):
            if n % 2:
                runs[-1].append(int(piece))
                continue
            parts = self._controls.split(piece) if self._controls else [piece]
            runs[-1].append(parts[0])
            for token, text in zip(parts[1::2], parts[2::2], strict=True):
                controls.append(self._control_ids[token])
                runs.append([text])
        return tuple(tuple(run) for run in runs), tuple(controls)

    def _encode_runs(self, texts: list[str]) -> list[tuple[int, ...]]:
        """Ids of each text (special-token strings split), from the run cache; the misses in
        one batched call. Batched or alone, a fast tokenizer gives a text the same ids."""
        unique = list(dict.fromkeys(texts))
        known = {text: ids for text in unique if (ids := self.runs.get(text)) is not None}
        if missing := [text for text in unique if text not in known]:
            encoded = self.tokenizer(missing, add_special_tokens=False, split_special_tokens=True)["input_ids"]
            known.update((text, self.runs.put(text, ids)) for text, ids in zip(missing, encoded, strict=True))
        return [known[text] for text in texts]


class TokenCounting:
    """The Engine contract's token methods for an engine holding a PromptTokenizer in `_tokens`
    (None until loaded): both engines count and render through the same code."""

    _tokens: PromptTokenizer | None

    def _require_tokens(self) -> PromptTokenizer:
        if self._tokens is None:
            raise EngineNotLoaded("the model is not loaded")
        return self._tokens

    def render(self, messages: list[Message]) -> str:
        return self._require_tokens().render(messages)

    def count_tokens(self, text: str) -> int:
        return self._require_tokens().count_tokens(text)

    def count_chat_tokens(self, messages: list[Message]) -> int:
        return self._require_tokens().count_chat_tokens(messages)
