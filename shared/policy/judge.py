"""The model judge: one fixed yes/no question to the loaded model, for what lists cannot see.

The policy receives an async `ask` callable (the composition root wraps `Engine.judge`),
so this package never imports the engine. Any failure of the model leaves the rule
layers' decision standing and logs a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.policy.lexicon import read_json

log = logging.getLogger("policy")

# (role, content) pairs -> probability of the first answer ("yes") against the second ("no").
JudgeAsk = Callable[[list[tuple[str, str]]], Awaitable[float]]


@dataclass(frozen=True)
class ModelJudge:
    ask: JudgeAsk
    system: str
    question: str
    threshold: float = 0.5
    max_chars: int = 3000

    @classmethod
    def of(cls, ask: JudgeAsk, extra_dir: Path | None = None) -> ModelJudge:
        data = read_json("judge.json", extra_dir)
        return cls(ask, data["system"], data["question"], float(data["threshold"]), int(data["max_chars"]))

    def messages(self, texts: Sequence[str]) -> list[tuple[str, str]]:
        shown = "\n---\n".join(t for t in texts if t)[-self.max_chars :]
        return [("system", self.system), ("user", self.question.format(text=shown))]

    async def score(self, texts: Sequence[str]) -> float | None:
        """P(yes), or None when the model could not answer (the rules' decision stands)."""
        try:
            return float(await self.ask(self.messages(texts)))
        except Exception as exc:  # noqa: BLE001 - any engine failure means "no decision", never a failed job
            log.warning("policy judge unavailable (%s); the rule layers' decision stands", type(exc).__name__)
            return None
