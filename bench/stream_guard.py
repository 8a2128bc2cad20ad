"""The cost of judging a stream before it leaves: one policy check per release, and a whole reply.

`python -m bench.stream_guard` prints the numbers and saves bench/results/stream_guard.json.
No model: the check is policy work on the event loop, measured on the shipped lists.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.chat.stream_guard import StreamGuard
from shared.policy import ContentPolicy
from tests.fakes.engine import tokens_of

RESULTS = Path(__file__).parent / "results"
STORY = (
    "Once upon a time in the land of Eldrador, there lived a brave dragon named Eira. She was a "
    "magnificent creature with scales that shone like stars on a summer's day. Eira had the power to "
    "fly high into the sky and could breathe fire from her belly. She was also very wise and knew many "
    "things. One day, a group of people came to Eira and asked her to create something special. "
)
SHORT_INPUT = ["Write a long story for my kid about a dragon."]
LONG_INPUT = ["Tell me more about the trip we planned. " * 200] + [STORY * 2] * 6  # 8000-char message, 6 turns


def _median_ms(fn: Callable[[int], object], repeat: int) -> float:
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 3)


def per_check(policy: ContentPolicy, inputs: list[str], reply_chars: int, repeat: int = 20) -> float:
    """One check of a reply the policy has not seen (it caches per text; the inputs are cached, as in a stream)."""
    reply = (STORY * (reply_chars // len(STORY) + 1))[:reply_chars]
    policy.enforce(inputs, action="chat")
    tag = len(inputs)  # runs for other inputs judged other texts: nothing comes from the cache
    return _median_ms(lambda i: policy.enforce([*inputs, f"{tag}.{i} {reply}"], action="chat", stage="stream"), repeat)


def whole_reply(policy: ContentPolicy, inputs: list[str], tokens: int = 256) -> dict[str, Any]:
    """A reply of `tokens` 4-character tokens through the guard: checks made and time spent in them."""
    reply = "".join(tokens_of(STORY * 10, 4)[:tokens])

    def run(i: int) -> StreamGuard:
        judge = lambda pieces: policy.enforce([*inputs, *pieces], action="chat", stage="stream")  # noqa: E731
        guard = StreamGuard(judge, policy.holdback_chars)
        for token in tokens_of(f"{len(inputs)}.{i} {reply}", 4):  # a new reply each run: nothing from the cache
            guard.feed(token)
        return guard

    checks = run(-1).checks
    total = _median_ms(run, 5)
    return {"tokens": tokens, "chars": len(reply), "checks": checks, "total_ms": total, "per_token_ms": total / tokens}


def main() -> None:
    policy = ContentPolicy(adult_enabled=False)
    results: dict[str, Any] = {"holdback_chars": policy.holdback_chars}
    for name, inputs in (("short_input", SHORT_INPUT), ("long_input", LONG_INPUT)):
        results[name] = {
            "input_chars": sum(len(t) for t in inputs),
            "check_ms_by_reply_chars": {n: per_check(policy, inputs, n) for n in (200, 1000, 4000)},
            "reply_256_tokens": whole_reply(policy, inputs),
        }
    print(json.dumps(results, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "stream_guard.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
