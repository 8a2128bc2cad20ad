"""Prompt enhancement service for SDXL and WAN 2.1 jobs."""

from shared.enhance.profiles import Profile, Profiles, load_profiles
from shared.enhance.result import Enhancement, TokenBudget
from shared.enhance.service import EnhanceService
from shared.enhance.status import EnhanceStatus, JobTypeFacts

__all__ = [
    "EnhanceService",
    "EnhanceStatus",
    "Enhancement",
    "JobTypeFacts",
    "Profile",
    "Profiles",
    "TokenBudget",
    "load_profiles",
]
