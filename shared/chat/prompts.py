"""Default system prompts per context type, read from data."""

from __future__ import annotations

import json
from pathlib import Path

from shared.errors import InvalidInput

PROMPTS_FILE = Path(__file__).parent / "data" / "system_prompts.json"


class SystemPrompts:
    def __init__(self, path: Path = PROMPTS_FILE) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        self.contexts: dict[str, str] = data["contexts"]
        self.adult_guidance: str = data["adult_guidance"]
        self.non_explicit_guidance: str = data["non_explicit_guidance"]

    def default_for(self, context_type: str, adult_mode: bool, adult_detected: bool) -> str:
        """The worker's own prompt; detection only chooses among these, never a caller's."""
        if context_type not in self.contexts:
            valid = ", ".join(sorted(self.contexts))
            raise InvalidInput(
                f"unknown context_type '{context_type}' without a system_prompt; valid: {valid}",
                field="context_type",
            )
        prompt = self.contexts[context_type]
        if adult_mode:
            return f"{prompt}\n\n{self.adult_guidance}"
        if adult_detected:
            return f"{prompt}\n\n{self.non_explicit_guidance}"
        return prompt
