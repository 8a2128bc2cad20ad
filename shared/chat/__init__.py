"""Chat service."""

from shared.chat.prompts import SystemPrompts
from shared.chat.service import ChatReply, ChatService

__all__ = ["ChatReply", "ChatService", "SystemPrompts"]
