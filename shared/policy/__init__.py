"""Content policy: adult detection and the always-on minor-safety block."""

from shared.policy.judge import JudgeAsk, JudgeInput, JudgeStats, ModelJudge
from shared.policy.policy import REFUSAL, Assessment, ContentPolicy

__all__ = ["REFUSAL", "Assessment", "ContentPolicy", "JudgeAsk", "JudgeInput", "JudgeStats", "ModelJudge"]
