"""Job-type profiles, loaded from data. An operator's file is merged over the shipped one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import SettingsError

PROFILES_FILE = Path(__file__).parent / "data" / "profiles.json"


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    family: Literal["sdxl", "wan"]
    version: int = Field(1, ge=1)
    tokenizer: Literal["clip", "clip-bpe-proxy"]
    token_limit: int = Field(ge=8, le=512)
    token_target: tuple[int, int]
    max_new_tokens: int = Field(ge=8, le=1024)
    temperature: float = Field(0.6, ge=0.0, le=2.0)
    style: Literal["tags", "paragraph"]
    system_prompt: str
    adult_system_addition: str = ""
    lead_phrase: str = ""
    quality_tags: list[str]
    default_phrases: dict[str, list[str]]
    adult_phrases: list[str] = []
    indicators: dict[str, list[str]]
    negative_prompt: str
    max_model_phrases: int = Field(8, ge=0, le=64)  # tags or sentences taken from the model
    examples: list[dict[str, str]] = []  # few-shot {input, output} pairs shown to the model

    @property
    def chunk_size(self) -> int:
        return 75  # CLIP's 77-token window less BOS/EOS, as A1111/ComfyUI chunk prompts


class Profiles:
    def __init__(self, profiles: dict[str, Profile]) -> None:
        self.by_name = profiles

    def names(self) -> list[str]:
        return sorted(self.by_name)

    def get(self, job_type: str) -> Profile | None:
        return self.by_name.get(job_type)


def load_profiles(operator_file: Path | None = None) -> Profiles:
    raw = json.loads(PROFILES_FILE.read_text(encoding="utf-8"))["profiles"]
    if operator_file is not None:
        try:
            raw.update(json.loads(operator_file.read_text(encoding="utf-8"))["profiles"])
        except (OSError, ValueError, KeyError) as exc:
            raise SettingsError(f"PROFILES_FILE {operator_file} is not a readable profiles file: {exc}") from None
    try:
        return Profiles({name: Profile(name=name, **body) for name, body in raw.items()})
    except ValidationError as exc:
        raise SettingsError(f"invalid job-type profile: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}") from None
