"""Prompt enhancement service for SDXL and WAN 2.1 jobs."""

from shared.enhance.profiles import Profile, Profiles, load_profiles
from shared.enhance.service import EnhanceService

__all__ = ["EnhanceService", "Profile", "Profiles", "load_profiles"]
