"""Content policy: adult detection and the always-on minor-safety block."""

from shared.policy.policy import REFUSAL, Assessment, ContentPolicy

__all__ = ["REFUSAL", "Assessment", "ContentPolicy"]
