"""Streaming and detokenisation.

On the model thread each job's `ReplyText` turns its picked token ids into text
incrementally (tokenizers' DecodeStream: linear in the reply, whole UTF-8 characters only),
ends the reply at the first stop string, and releases streamed text only up to a point no
stop string can still start from. On the event loop `deltas` forwards that text.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from tokenizers.decoders import DecodeStream

from shared.engine.base import Generation

Finish = Literal["stop", "length"]


class ReplyText:
    """One reply's tokens and text; lives with its job, so a retried batch continues it.

    Stop strings are matched here on the incrementally decoded text rather than with
    transformers' StopStringCriteria: that criteria takes one stop list for the whole batch,
    while each row of ours has its own, and we also need where the match starts (to trim the
    text, count only the kept tokens and hold back a partial match from the stream)."""

    def __init__(self, backend: Any, stop: tuple[str, ...], on_text: Callable[[str], None] | None) -> None:
        self._backend = backend  # the tokenizers.Tokenizer behind the transformers tokenizer
        self._decoder = DecodeStream(skip_special_tokens=True)
        self._stop = tuple(s for s in stop if s)
        self._on_text = on_text
        self.ids: list[int] = []
        self._ends: list[int] = []  # text length after each token
        self.text = ""
        self._sent = 0
        self.kept = 0  # tokens wholly before the stop string (all tokens when none was hit)
        self.finish: Finish | None = None  # set once the reply has ended
        self.generator: Any = None  # a seeded row's torch.Generator, kept across retries

    @property
    def ended(self) -> bool:
        return self.finish is not None

    def push(self, token: int, max_tokens: int) -> None:
        """Add one picked token; ends the reply at a stop string or at max_tokens."""
        before = len(self.text)
        self.ids.append(token)
        self.text += self._decoder.step(self._backend, token) or ""
        self._ends.append(len(self.text))
        self.kept = len(self.ids)
        cut = self._first_stop(before)
        if cut is not None:
            self.text = self.text[:cut]
            self.kept = sum(1 for end in self._ends if end <= cut)
            self.end("stop")
        elif len(self.ids) >= max_tokens:
            self.end("length")
        else:
            self._release(len(self.text) - self._held_back())

    def end(self, finish: Finish) -> None:
        if self.finish is None:
            self.finish = finish
            self._release(len(self.text))

    def result(self, prompt_tokens: int) -> Generation:
        return Generation(self.text.strip(), prompt_tokens, self.kept, self.finish or "length")

    def _first_stop(self, before: int) -> int | None:
        """Index of the first stop string that the newest text completed."""
        if not self._stop:
            return None
        start = max(0, before - max(len(s) for s in self._stop) + 1)
        found = [i for i in (self.text.find(s, start) for s in self._stop) if i >= 0]
        return min(found) if found else None

    def _held_back(self) -> int:
        """Length of the longest tail that could still grow into a stop string."""
        longest = 0
        for s in self._stop:
            for n in range(min(len(s) - 1, len(self.text)), longest, -1):
                if self.text.endswith(s[:n]):
                    longest = n
                    break
        return longest

    def _release(self, upto: int) -> None:
        if upto > self._sent and self._on_text is not None:
            self._on_text(self.text[self._sent : upto])
        self._sent = max(self._sent, upto)


class TextFeed:
    """Hands streamed text from the model thread to one stream on its event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_gone: Callable[[], None]) -> None:
        self._loop = loop
        self._on_gone = on_gone
        self.queue: asyncio.Queue[str] = asyncio.Queue()

    def __call__(self, text: str) -> None:
        try:
            self._loop.call_soon_threadsafe(self.queue.put_nowait, text)
        except RuntimeError:  # the consumer's loop is closed: stop generating for it
            self._on_gone()


async def deltas(feed: TextFeed, task: asyncio.Future[Generation]) -> AsyncIterator[str | Generation]:
    """Text deltas as they are released, then the final Generation. Leaving early cancels the job."""
    texts = feed.queue
    try:
        while not (task.done() and texts.empty()):
            getter: asyncio.Future[Any] = asyncio.ensure_future(texts.get())
            waiting: set[asyncio.Future[Any]] = {getter, task}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                continue
            yield getter.result()
        yield await task
    finally:
        task.cancel()  # a consumer that stopped listening: the job leaves the queue or stops
