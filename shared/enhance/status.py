"""What the enhancement service reports about itself, as a domain object.

`EnhanceService.info()` returns an `EnhanceStatus`; only the adapter (handler/actions/admin.py,
the `enhancement_info` command) turns it into the seed's wire fields.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobTypeFacts:
    name: str
    family: str  # the profile's model family: sdxl or wan
    tokenizer: str  # label of the tokenizer that counts its budget (the pipeline's, or its stated proxy)
    token_limit: int
    token_target: tuple[int, int]
    style: str  # tags or paragraph
    version: int  # the profile's version: part of every cache key


@dataclass(frozen=True)
class EnhanceStatus:
    job_types: tuple[JobTypeFacts, ...]  # in the profiles' own order (the built-in file, then the operator's)
    cache_size: int
    cache_hits: int
    cache_misses: int
    cache_shared: bool  # the cache is shared with other workers and reachable now (false while degraded)
    model_loaded: bool
    adult_enabled: bool  # the operator enabled adult content; minor safety is always on
